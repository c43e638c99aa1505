"""One validation run of a GPU host: imports, torch parity, 1080p latency, stream capacity.

What ``orstream bench gpu`` (and ``scripts/gpu_check.sh``) measures, in order:

1. Imports: versions of torch, CUDA, ONNX, ONNX Runtime, OpenCV, gRPC, and proof that nothing
   needing GStreamer or Lightning was imported.
2. Parity: every graph of the shipped recognizer and segmenter on the torch backend at fp32,
   fp16 and bf16 against the packages' golden outputs (ONNX Runtime on CPU, fp32).
3. Latency at 1080p: a 1920x1080 RGB frame through GPU pre-processing and the recognizer, and
   through the segmenter's image encoder and one box-prompt decode, with and without CUDA
   graphs, beside ONNX Runtime on CPU with CPU pre-processing.
4. Stream capacity: N concurrent 1080p30 live streams replay phantom frames rendered beforehand
   into memory (so neither rendering nor decoding is what is measured) through the app that
   ships (:class:`~orstream.edge.app.compose.EdgeApp`, as ``orstream bench capacity`` runs it):
   the one recognizer on every frame of every stream with GPU pre-processing, batching the
   streams' frames that are due together; the one segmenter at its card's rate on each stream;
   the overlay on every frame. A trial passes when no stream loses a video frame, every
   stream's p99 frame-to-result stays within the budget (50 ms) and every stream gets masks at
   90% of the segmenter's rate. N doubles until a trial fails, then the gap is bisected. The
   models load once (torch, on the device) for every trial. The search stops early, saying so,
   when the next trial would overrun the run's time budget.

Every figure goes into one JSON document, rewritten after each part and each trial so that a
run cut short still leaves what it measured; a short table closes the printed report.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import parse_config
from orstream.edge.backends import Backend, Graph, open_backend
from orstream.edge.backends.batching import prepare_batches
from orstream.edge.backends.reference_check import check_reference
from orstream.edge.bench.capacity import (
    Trial,
    describe_trial,
    null_sinks,
    play,
    search,
    stream_ids,
)
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.edge.models.shipped import SHIPPED_CLASSIFIER
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.models.workflow_runner import WorkflowRunner
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.package.loading import ModelPackage
from orstream.segmentation.prompts import Prompt
from orstream.streams.sources.replay import ReplaySource

FORBIDDEN_MODULES = ("gi", "lightning", "pytorch_lightning")
"""A GPU host validated by this run may have neither GStreamer's bindings nor Lightning."""
IMPORTED = ("torch", "onnx", "onnxruntime", "cv2", "grpc", "numpy", "numba", "pydantic", "yaml")
PRECISIONS = ("fp32", "fp16", "bf16")
STREAM_START_S = 1.0
"""What a trial takes beyond its streams' length: starting and draining the app."""


@dataclass(frozen=True)
class GpuCheckSettings:
    """How long and how hard the check runs; the defaults fit a single H100/H200 in minutes.

    Attributes:
        device: ``cuda:N``, or ``cpu`` to try the whole run on small settings without a GPU.
        size: (width, height) of the frames.
        frames: distinct phantom frames rendered into memory for replay.
        iterations: timed calls per latency row.
        stream_fps: frame rate of each replayed stream.
        stream_seconds: length of one capacity trial.
        max_streams: the most streams tried.
        budget_ms: p99 frame-to-result a stream count must stay under.
        precision: the torch backend's precision for latency and capacity.
        time_budget_s: the whole run's wall-clock budget; no stream trial starts that would
            end past it.
    """

    device: str = "cuda:0"
    size: tuple[int, int] = (1920, 1080)
    frames: int = 32
    iterations: int = 300
    stream_fps: float = 30.0
    stream_seconds: float = 6.0
    max_streams: int = 128
    budget_ms: float = 50.0
    precision: str = "fp16"
    time_budget_s: float = 420.0


@dataclass
class GpuReport:
    """Every figure of one run (``as_json`` is what the JSON file holds)."""

    settings: GpuCheckSettings
    imports: dict[str, Any] = field(default_factory=dict)
    parity: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)
    max_streams: int = 0
    capacity_search: str = "not run"
    """"complete", or why the stream search stopped before finding the boundary."""

    def as_json(self) -> dict[str, Any]:
        return {
            "settings": {
                **self.settings.__dict__,
                "size": list(self.settings.size),
            },
            "imports": self.imports,
            "parity": self.parity,
            "latency": self.latency,
            "streams": self.streams,
            "max_streams": self.max_streams,
            "capacity_search": self.capacity_search,
        }


def import_checks(device: str) -> dict[str, Any]:
    """Versions of what the run needs; OrstreamError when something is missing."""
    versions: dict[str, Any] = {}
    missing = []
    for name in IMPORTED:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
            continue
        versions[name] = str(getattr(module, "__version__", "?"))
    if missing:
        raise OrstreamError("missing Python packages: " + ", ".join(missing))
    import onnxruntime
    import torch

    versions["onnxruntime_providers"] = onnxruntime.get_available_providers()
    if device != "cpu":
        if not torch.cuda.is_available():
            raise OrstreamError(f"torch {torch.__version__} sees no CUDA device (asked {device})")
        properties = torch.cuda.get_device_properties(torch.device(device))
        versions["cuda"] = torch.version.cuda
        versions["gpu"] = properties.name
        versions["compute_capability"] = f"{properties.major}.{properties.minor}"
        versions["sm_count"] = properties.multi_processor_count
    return versions


def forbidden_imports() -> list[str]:
    """The modules of :data:`FORBIDDEN_MODULES` this process has imported."""
    return [name for name in FORBIDDEN_MODULES if name in sys.modules]


def load_backend(
    name: str, package: ModelPackage, device: str, graph: Graph, **options: Any
) -> Backend:
    """The backend ``name`` with ``graph`` of ``package`` loaded on ``device``.

    Raises:
        OrstreamError: why it cannot run here.
    """
    backend = open_backend(name, package, device, graph, **options)
    if isinstance(backend, str):
        raise OrstreamError(f"{name} on {device}: {backend}")
    return backend


def parity_rows(packages: Sequence[ModelPackage], device: str) -> list[dict[str, Any]]:
    """Each graph of each package on the torch backend per precision, against its golden
    outputs; a row per (package, graph, precision), failures kept as rows with ``ok`` false."""
    precisions = ("fp32",) if device == "cpu" else PRECISIONS
    rows = []
    for package in packages:
        graphs: tuple[Graph, ...] = (
            ("model", "decoder") if package.card.decoder is not None else ("model",)
        )
        for graph in graphs:
            for precision in precisions:
                row: dict[str, Any] = {
                    "package": package.card.name,
                    "graph": graph,
                    "precision": precision,
                }
                try:
                    backend = load_backend("torch", package, device, graph, precision=precision)
                    check = check_reference(backend, package, graph)
                    row.update(
                        backend=backend.label,
                        max_abs_diff=check.max_abs_diff,
                        allowed=check.allowed,
                        ok=True,
                    )
                except OrstreamError as error:
                    row.update(ok=False, error=str(error))
                rows.append(row)
    return rows


def time_per_frame(
    call: Callable[[np.ndarray], object], frames: np.ndarray, iterations: int
) -> LatencySummary:
    """Latency of ``call`` on frames in turn, after a warm-up of a tenth of the calls."""
    for i in range(max(3, iterations // 10)):
        call(frames[i % len(frames)])
    samples = np.empty(iterations)
    for i in range(iterations):
        begin = time.perf_counter()
        call(frames[i % len(frames)])
        samples[i] = (time.perf_counter() - begin) * 1000.0
    return LatencySummary.of(samples)


def _box_prompt(
    model: SegmenterModel, embedding: ImageEmbedding, box: tuple[float, float, float, float]
) -> Callable[[np.ndarray], object]:
    """One decode of ``box`` on ``embedding`` per call (the frame argument is not used)."""
    return lambda _frame: model.segment(embedding, Prompt(box=box))


def latency_rows(
    workflow: ModelPackage,
    segmenter: ModelPackage,
    frames: np.ndarray,
    settings: GpuCheckSettings,
) -> list[dict[str, Any]]:
    """Per-frame latency of the recognizer and the segmenter at the frames' size, on the torch
    backend with and without CUDA graphs and on ONNX Runtime on CPU."""
    height, width = frames.shape[1:3]
    box = (width * 0.3, height * 0.3, width * 0.6, height * 0.7)
    configs: list[tuple[str, str, dict[str, Any]]] = [("onnxruntime", "cpu", {})]
    if settings.device == "cpu":
        configs.append(("torch", "cpu", {"precision": "fp32", "cuda_graphs": False}))
    else:
        for graphs in (True, False):
            options = {"precision": settings.precision, "cuda_graphs": graphs}
            configs.append(("torch", settings.device, options))
    rows = []
    for name, device, options in configs:
        recognizer = load_backend(name, workflow, device, "model", **options)
        runner = WorkflowRunner(recognizer, workflow.card)
        model = SegmenterModel(
            segmenter,
            load_backend(name, segmenter, device, "model", **options),
            load_backend(name, segmenter, device, "decoder", **options),
        )
        measured = {
            "recognizer": time_per_frame(runner, frames, settings.iterations),
            "segmenter_encoder": time_per_frame(model.embed, frames, settings.iterations),
            "segmenter_box_prompt": time_per_frame(
                _box_prompt(model, model.embed(frames[0]), box), frames, settings.iterations
            ),
        }
        for what, summary in measured.items():
            rows.append(
                {
                    "model": what,
                    "backend": recognizer.label if what == "recognizer" else model.encoder.label,
                    "cuda_graphs": bool(options.get("cuda_graphs", False)),
                    "frame": f"{width}x{height}",
                    **{f"{key}_ms": value for key, value in summary.as_dict().items()},
                }
            )
    return rows


class SharedModels:
    """The models the capacity trials share: one recognizer backend and one segmenter (encoder
    and decoder) on the device, loaded once for every trial, as the edge loads them once for
    every stream. Each trial gets fresh per-stream state around them."""

    def __init__(
        self, workflow: ModelPackage, segmenter: ModelPackage, settings: GpuCheckSettings
    ) -> None:
        options: dict[str, Any] = {"precision": settings.precision}
        if settings.device == "cpu":
            options["cuda_graphs"] = False
        self.workflow_package = workflow
        self.segmenter_package = segmenter
        self.recognizer = load_backend("torch", workflow, settings.device, "model", **options)
        self.encoder = load_backend("torch", segmenter, settings.device, "model", **options)
        self.decoder = load_backend("torch", segmenter, settings.device, "decoder", **options)
        prepare_batches(self.recognizer, workflow)
        prepare_batches(self.encoder, segmenter)

    def workflow(self, rate_hz: float) -> WorkflowModel:
        return WorkflowModel(self.workflow_package, self.recognizer, rate_hz)

    def segmenter(self) -> SegmenterModel:
        return SegmenterModel(self.segmenter_package, self.encoder, self.decoder)


def run_streams(
    count: int, models: SharedModels, frames: np.ndarray, settings: GpuCheckSettings
) -> Trial:
    """``count`` live streams replayed from memory at ``stream_fps`` for ``stream_seconds``
    through the app that ships: the recognizer on every frame (batched across streams), the
    segmenter at its card's rate, the overlay on every frame into a sink that keeps nothing."""
    ids = stream_ids(count)
    sections: dict[str, Any] = {
        "sources": [{"uri": f"replay://{sid}", "stream_id": sid} for sid in ids],
        "model": {"package": str(models.workflow_package.root), "rate_hz": settings.stream_fps},
        "segmentation": {
            "package": str(models.segmenter_package.root),
            "classifier": str(SHIPPED_CLASSIFIER),
        },
        "grpc": {"enabled": False},
    }
    sources = {
        sid: ReplaySource(
            list(frames), settings.stream_fps, settings.stream_seconds, sid, start_offset=index
        )
        for index, sid in enumerate(ids)
    }
    app = EdgeApp(
        parse_config(sections, "bench gpu"),
        sources=sources,
        sinks=null_sinks(ids),
        workflow=models.workflow(settings.stream_fps),
        segmenter=models.segmenter(),
    )
    return play(app, ids, settings.stream_fps, settings.budget_ms)


def stream_capacity(
    models: SharedModels,
    frames: np.ndarray,
    settings: GpuCheckSettings,
    report: GpuReport,
    deadline: float,
    progress: Callable[[str], None],
    saved: Callable[[GpuReport], None],
) -> None:
    """The most streams that pass into ``report.max_streams``, every trial into
    ``report.streams`` as it ends, and whether the search finished before ``deadline`` (a
    ``time.perf_counter()`` value)."""

    def may_run(count: int) -> str | None:
        expected = settings.stream_seconds + STREAM_START_S
        if time.perf_counter() + expected > deadline:
            return f"stopped before {count} streams: the time budget ran out"
        return None

    def on_trial(trial: Trial) -> None:
        report.streams.append(asdict(trial))
        report.streams.sort(key=lambda row: row["streams"])
        if trial.ok:
            report.max_streams = max(report.max_streams, trial.streams)
        progress("  " + describe_trial(trial, settings.budget_ms))
        saved(report)

    report.capacity_search = "running"
    _, report.capacity_search = search(
        settings.max_streams,
        lambda count: run_streams(count, models, frames, settings),
        on_trial,
        may_run,
    )
    if report.capacity_search != "complete":
        progress(f"  {report.capacity_search}")


RENDER_PIXELS = 640 * 360
"""Frames larger than this are rendered at this many pixels and upscaled: painting a case's
scenes at 1080p takes about 50 s of one core, at 640x360 about 4 s, and the timings measured
depend on the frame's size, not on its detail."""


def render_frames(count: int, size: tuple[int, int]) -> np.ndarray:
    """``count`` phantom frames of ``size`` (width, height), a second apart in one case."""
    import cv2

    from orstream.streams.phantom.difficulty import get_difficulty
    from orstream.streams.phantom.renderer import CaseRenderer

    width, height = size
    shrink = min(1.0, (RENDER_PIXELS / (width * height)) ** 0.5)
    rendered = (max(16, round(width * shrink)), max(16, round(height * shrink)))
    renderer = CaseRenderer(
        seed=11,
        video=1,
        seconds=count + 30,
        difficulty=get_difficulty("normal"),
        width=rendered[0],
        height=rendered[1],
        fps=1.0,
    )
    # Skip the first 30 s: the case opens outside the patient.
    frames = (renderer.render(30 + i).image for i in range(count))
    if rendered == size:
        return np.stack(list(frames))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])


def run_gpu_check(
    workflow: ModelPackage,
    segmenter: ModelPackage,
    settings: GpuCheckSettings,
    progress: Callable[[str], None] = lambda line: None,
    saved: Callable[[GpuReport], None] = lambda report: None,
) -> GpuReport:
    """All four parts in order (see the module docstring), ``saved`` called with the report
    after each part and each stream trial."""
    deadline = time.perf_counter() + settings.time_budget_s
    report = GpuReport(settings)
    progress("imports")
    report.imports = import_checks(settings.device)
    report.imports["forbidden_imported"] = forbidden_imports()
    saved(report)
    progress("parity of the torch backend against the golden outputs")
    report.parity = parity_rows((workflow, segmenter), settings.device)
    saved(report)
    width, height = settings.size
    progress(f"rendering {settings.frames} phantom frames for {width}x{height}")
    frames = render_frames(settings.frames, settings.size)
    progress(f"latency at {width}x{height}")
    report.latency = latency_rows(workflow, segmenter, frames, settings)
    saved(report)
    progress(f"concurrent {settings.stream_fps:g} fps streams, p99 budget {settings.budget_ms} ms")
    models = SharedModels(workflow, segmenter, settings)
    stream_capacity(models, frames, settings, report, deadline, progress, saved)
    report.imports["forbidden_imported"] = forbidden_imports()
    saved(report)
    return report


def format_report(report: GpuReport) -> str:
    """The short table that ends the printed report."""
    lines = [f"host: {report.imports.get('gpu', 'cpu')}, torch {report.imports['torch']}"]
    lines.append("parity (max |diff| vs ONNX Runtime CPU fp32 / allowed):")
    for row in report.parity:
        where = f"  {row['package']}.{row['graph']} {row['precision']:<5}"
        if row["ok"]:
            lines.append(f"{where} {row['max_abs_diff']:.2e} / {row['allowed']:.2e} ok")
        else:
            lines.append(f"{where} FAILED: {row['error']}")
    lines.append(f"{'latency':<22} {'backend':<30} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9}")
    for row in report.latency:
        lines.append(
            f"  {row['model']:<20} {row['backend']:<30} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['p999_ms']:>9.2f}"
        )
    settings = report.settings
    lines.append(
        f"streams: {report.max_streams} concurrent {settings.size[0]}x{settings.size[1]}@"
        f"{settings.stream_fps:g} with p99 frame-to-result under {settings.budget_ms:g} ms"
        + ("" if report.capacity_search == "complete" else f" (at least; {report.capacity_search})")
    )
    forbidden = report.imports.get("forbidden_imported") or []
    lines.append(f"GStreamer/Lightning imported: {', '.join(forbidden) or 'none'}")
    return "\n".join(lines)
