"""Every backend this host can run, timed on one package graph side by side in one run.

Each backend configuration (ONNX Runtime on CPU, torch on CPU, and where CUDA exists ONNX
Runtime on CUDA, torch on CUDA at fp32/fp16/bf16 with and without CUDA graphs, TensorRT when an
engine matches) is loaded, fed the package's golden reference inputs for a warm-up, then timed
call by call. Each row also carries the largest difference of its outputs from ONNX Runtime on
CPU on the same inputs, so a fast configuration that is wrong shows at once.

For a package with a dynamic batch, calls of several rows (different ones: the golden input and
noisy copies of it, :func:`~orstream.export.onnx.batch.batch_check.batch_rows`) are timed beside the
same rows run one at a time, one call each: what batching the calls of several video streams
saves, per call and per frame.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orstream.edge.backends import Backend, Graph, open_backend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import batch_rows, stack_rows
from orstream.latency import LatencySummary
from orstream.package.loading import ModelPackage

REFERENCE_LABEL = "onnxruntime-cpu"
"""The configuration every other one is compared with: the package's reference runtime."""


@dataclass(frozen=True)
class BackendConfig:
    """One way to run a graph: a backend, a device and the backend's options."""

    backend: str
    device: str
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        options = ", ".join(f"{key}={value}" for key, value in self.options.items())
        return f"{self.backend} on {self.device}" + (f" ({options})" if options else "")


@dataclass(frozen=True)
class BackendFigures:
    """What one configuration measured."""

    label: str
    latency: LatencySummary
    fps: float
    max_abs_diff: float
    ratio_p50: float
    """ONNX Runtime on CPU's p50 over this one's: above 1 means faster."""
    batch: int = 1
    """Rows per timed call (``latency`` is per call, ``fps`` calls per second)."""
    sequential: LatencySummary | None = None
    """With ``batch`` above 1: the same rows one call each, one after the other, per group."""

    def as_json(self) -> dict[str, float]:
        figures = {
            "p50_ms": self.latency.p50,
            "p99_ms": self.latency.p99,
            "p999_ms": self.latency.p999,
            "fps": self.fps,
            "max_abs_diff": self.max_abs_diff,
            "ratio_p50": self.ratio_p50,
        }
        if self.sequential is not None:
            figures.update(
                batch=self.batch,
                frame_p50_ms=self.latency.p50 / self.batch,
                sequential_p50_ms=self.sequential.p50,
                sequential_p99_ms=self.sequential.p99,
                gain_p50=self.sequential.p50 / self.latency.p50,
            )
        return figures


@dataclass(frozen=True)
class SkippedConfig:
    """A configuration that could not run here, and why."""

    config: BackendConfig
    reason: str


def cuda_devices() -> list[str]:
    """``cuda:N`` for every CUDA device torch sees; none where torch is missing."""
    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    return [f"cuda:{index}" for index in range(torch.cuda.device_count())]


def backend_configs(cuda_device: str | None) -> list[BackendConfig]:
    """The configurations to try: CPU ones always, CUDA ones on ``cuda_device`` if given."""
    configs = [
        BackendConfig("onnxruntime", "cpu"),
        BackendConfig("torch", "cpu", {"precision": "fp32"}),
    ]
    if cuda_device is None:
        return configs
    configs.append(BackendConfig("onnxruntime", cuda_device))
    for precision in ("fp32", "fp16", "bf16"):
        for graphs in (True, False):
            options = {"precision": precision, "cuda_graphs": graphs}
            configs.append(BackendConfig("torch", cuda_device, options))
    configs.append(BackendConfig("tensorrt", cuda_device))
    return configs


def max_abs_diff(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """The largest absolute difference over every output (inf on a shape or name mismatch)."""
    if outputs.keys() != reference.keys():
        return float("inf")
    worst = 0.0
    for name, expected in reference.items():
        got = np.asarray(outputs[name], dtype=np.float64)
        if got.shape != expected.shape:
            return float("inf")
        if expected.size:
            worst = max(worst, float(np.max(np.abs(got - expected.astype(np.float64)))))
    return worst


def time_calls(
    backend: Backend, calls: list[dict[str, np.ndarray]], iterations: int, warmup: int
) -> tuple[LatencySummary, float]:
    """Latency of ``iterations`` rounds of ``calls`` (one after the other) after ``warmup``
    rounds, and rounds per second."""
    for _ in range(warmup):
        for inputs in calls:
            backend.infer(inputs)
    samples = np.empty(iterations, dtype=np.float64)
    started = time.perf_counter()
    for i in range(iterations):
        begin = time.perf_counter()
        for inputs in calls:
            backend.infer(inputs)
        samples[i] = (time.perf_counter() - begin) * 1000.0
    elapsed = time.perf_counter() - started
    return LatencySummary.of(samples), iterations / elapsed


def bench_package(
    package: ModelPackage,
    configs: list[BackendConfig],
    graph: Graph = "model",
    iterations: int = 200,
    warmup: int = 20,
    progress: Callable[[str], None] = lambda line: None,
    batch: int = 1,
) -> tuple[list[BackendFigures], list[SkippedConfig]]:
    """Time every configuration on the package's golden inputs, ONNX Runtime on CPU first;
    with ``batch`` above 1, calls of that many rows beside the rows one call each.

    Raises:
        OrstreamError: the package has no golden reference for ``graph``, ONNX Runtime on
            CPU cannot run it (there is nothing to compare with then), or ``batch`` is outside
            1 to the card's ``max_batch``.
    """
    if iterations < 1 or warmup < 0:
        raise OrstreamError(f"iterations must be >= 1 and warm-up >= 0, not {iterations}/{warmup}")
    card = package.card
    if not 1 <= batch <= card.max_batch:
        takes = "runs batch 1 only" if card.max_batch == 1 else f"takes 1 to {card.max_batch} rows"
        raise OrstreamError(f"--batch {batch}: {card.name} {takes}")
    reference = package.reference(graph)
    if reference is None:
        raise OrstreamError(
            f"model package {package.root} has no golden reference for its {graph} graph: "
            f"write one with orstream export reference --package {package.root}"
        )
    rows = batch_rows(reference.inputs, batch)
    inputs = stack_rows(rows)
    if not configs or configs[0] != BackendConfig("onnxruntime", "cpu"):
        raise OrstreamError("the first configuration must be onnxruntime on cpu")
    figures: list[BackendFigures] = []
    skipped: list[SkippedConfig] = []
    expected: dict[str, np.ndarray] = {}
    base_p50 = float("nan")
    for config in configs:
        progress(f"{config.describe()}: loading")
        opened = open_backend(config.backend, package, config.device, graph, **config.options)
        if isinstance(opened, str):
            if not figures:
                raise OrstreamError(f"onnxruntime cannot run {package.root}: {opened}")
            skipped.append(SkippedConfig(config, opened))
            progress(f"{config.describe()}: skipped ({opened})")
            continue
        outputs = opened.infer(inputs)
        if not figures:
            expected = {name: np.asarray(value, np.float64) for name, value in outputs.items()}
        progress(
            f"{opened.label}: timing {iterations} calls"
            + (f" of {batch} rows" if batch > 1 else "")
        )
        latency, fps = time_calls(opened, [inputs], iterations, warmup)
        sequential = None
        if batch > 1:
            progress(f"{opened.label}: timing {iterations} x {batch} calls of 1 row")
            sequential, _ = time_calls(opened, rows, iterations, warmup)
        if not figures:
            base_p50 = latency.p50
        figures.append(
            BackendFigures(
                label=opened.label,
                latency=latency,
                fps=fps,
                max_abs_diff=max_abs_diff(outputs, expected),
                ratio_p50=base_p50 / latency.p50,
                batch=batch,
                sequential=sequential,
            )
        )
        del opened
    return figures, skipped


def format_table(figures: list[BackendFigures], skipped: list[SkippedConfig]) -> str:
    """The side-by-side table the command prints, then the configurations that did not run."""
    header = (
        f"{'backend':<28} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'fps':>8} "
        f"{'vs cpu ort':>10} {'max |diff|':>11}"
    )
    batch = figures[0].batch if figures else 1
    if batch > 1:
        header += f" {'frame p50':>9} {f'{batch}x1 p50':>9} {f'{batch}x1 p99':>9} {'gain':>6}"
    lines = [header, "-" * len(header)]
    for row in figures:
        line = (
            f"{row.label:<28} {row.latency.p50:>8.2f} {row.latency.p99:>8.2f} "
            f"{row.latency.p999:>9.2f} {row.fps:>8.1f} {row.ratio_p50:>9.2f}x "
            f"{row.max_abs_diff:>11.2e}"
        )
        if row.sequential is not None:
            line += (
                f" {row.latency.p50 / row.batch:>9.2f} {row.sequential.p50:>9.2f} "
                f"{row.sequential.p99:>9.2f} {row.sequential.p50 / row.latency.p50:>5.2f}x"
            )
        lines.append(line)
    for entry in skipped:
        lines.append(f"not run: {entry.config.describe()}: {entry.reason}")
    return "\n".join(lines)
