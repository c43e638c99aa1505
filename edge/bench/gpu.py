"""One validation run of a GPU host: imports, torch parity, 1080p latency, stream capacity.

What ``orstream bench gpu`` (and ``scripts/gpu_check.sh``) measures, in order:

1. Imports: versions of torch, CUDA, ONNX, ONNX Runtime, OpenCV, gRPC, and proof that nothing
   needing GStreamer or Lightning was imported.
2. Parity: every graph of the shipped recognizer and segmenter on the torch backend at fp32,
   fp16 and bf16 against the packages' golden outputs (ONNX Runtime on CPU, fp32).
3. Latency at 1080p: a 1920x1080 RGB frame through GPU pre-processing and the recognizer, and
   through the segmenter's image encoder and one box-prompt decode, with and without CUDA
   graphs, beside ONNX Runtime on CPU with CPU pre-processing.
4. Stream capacity: N concurrent 1080p30 streams replay phantom frames rendered beforehand into
   memory (so rendering is not what is measured); every frame of every stream goes through GPU
   pre-processing and the recognizer, and a segmenter thread per stream segments its latest
   frame at the segmenter's rate. N doubles until the recognizer's p99 frame-to-result passes
   the budget (50 ms) or the segmenter misses its rate, then the boundary is bisected. Each
   stream has its own backends (own CUDA streams, static buffers and graphs), loaded once and
   kept for the later trials. The search stops early, saying so, when the next trial would
   overrun the run's time budget.

Every figure goes into one JSON document, rewritten after each part and each trial so that a
run cut short still leaves what it measured; a short table closes the printed report.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orstream.edge.backends import Backend, Graph, open_backend
from orstream.edge.backends.reference_check import check_reference
from orstream.edge.models.segmenter_model import ImageEmbedding, Prompt, SegmenterModel
from orstream.edge.models.workflow_runner import WorkflowRunner
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.package.loading import ModelPackage

FORBIDDEN_MODULES = ("gi", "lightning", "pytorch_lightning")
"""A GPU host validated by this run may have neither GStreamer's bindings nor Lightning."""
IMPORTED = ("torch", "onnx", "onnxruntime", "cv2", "grpc", "numpy", "numba", "pydantic", "yaml")
PRECISIONS = ("fp32", "fp16", "bf16")
STREAM_START_S = 0.2
"""Between starting a trial's threads and its first frame."""


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
        graphs = ("model", "decoder") if package.card.decoder is not None else ("model",)
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


class _LatestFrame:
    """A one-slot mailbox: the stream puts each frame, the segmenter takes the newest."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: tuple[np.ndarray, float] | None = None
        self._closed = False

    def put(self, frame: np.ndarray, arrival: float) -> None:
        with self._condition:
            self._item = (frame, arrival)
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def take(self) -> tuple[np.ndarray, float] | None:
        with self._condition:
            while self._item is None and not self._closed:
                self._condition.wait()
            item, self._item = self._item, None
            return item


class StreamModels:
    """Per-stream backends for the capacity trials: stream i's recognizer runner and segmenter,
    loaded on first use and kept, so each trial loads only the streams it adds."""

    def __init__(
        self, workflow: ModelPackage, segmenter: ModelPackage, settings: GpuCheckSettings
    ) -> None:
        self.workflow = workflow
        self.segmenter = segmenter
        self.device = settings.device
        self.options: dict[str, Any] = {"precision": settings.precision}
        if settings.device == "cpu":
            self.options["cuda_graphs"] = False
        self.runners: list[WorkflowRunner] = []
        self.segmenters: list[SegmenterModel] = []
        self._loading_s = 0.0

    def load_seconds(self, count: int) -> float:
        """About how long :meth:`take` of ``count`` will spend loading (0 before any load)."""
        if not self.runners:
            return 0.0
        return self._loading_s / len(self.runners) * max(0, count - len(self.runners))

    def _load(self, package: ModelPackage, graph: Graph) -> Backend:
        return load_backend("torch", package, self.device, graph, **self.options)

    def take(self, count: int) -> tuple[list[WorkflowRunner], list[SegmenterModel]]:
        """The first ``count`` streams' models, loading those not loaded yet."""
        began = time.perf_counter()
        while len(self.runners) < count:
            self.runners.append(
                WorkflowRunner(self._load(self.workflow, "model"), self.workflow.card)
            )
            self.segmenters.append(
                SegmenterModel(
                    self.segmenter,
                    self._load(self.segmenter, "model"),
                    self._load(self.segmenter, "decoder"),
                )
            )
        self._loading_s += time.perf_counter() - began
        return self.runners[:count], self.segmenters[:count]


def run_streams(
    count: int,
    models: StreamModels,
    frames: np.ndarray,
    settings: GpuCheckSettings,
) -> dict[str, Any]:
    """``count`` streams at ``stream_fps`` for ``stream_seconds``: the recognizer on every
    frame, the segmenter on the latest frame at its card's rate, on separate threads."""
    runners, segmenters = models.take(count)
    segmenter = models.segmenter
    classes = list(segmenters[0].classes)[:2]
    total = int(settings.stream_seconds * settings.stream_fps)
    every = max(1, round(settings.stream_fps / segmenter.card.clip.fps))
    latencies: list[list[float]] = [[] for _ in range(count)]
    mask_latencies: list[list[float]] = [[] for _ in range(count)]
    errors: list[str] = []
    start = time.perf_counter() + STREAM_START_S

    def stream(i: int, mailbox: _LatestFrame) -> None:
        offset = i / (count * settings.stream_fps)
        try:
            for k in range(total):
                arrival = start + offset + k / settings.stream_fps
                delay = arrival - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                frame = frames[(k + i) % len(frames)]
                if k % every == 0:
                    mailbox.put(frame, arrival)
                runners[i](frame)
                latencies[i].append((time.perf_counter() - arrival) * 1000.0)
        except Exception as error:  # a failing stream ends the trial, reported, not raised
            errors.append(f"stream {i}: {error}")
        finally:
            mailbox.close()

    def segment(i: int, mailbox: _LatestFrame) -> None:
        try:
            while (item := mailbox.take()) is not None:
                frame, arrival = item
                embedding = segmenters[i].embed(frame)
                for name in classes:
                    segmenters[i].segment(embedding, Prompt(text=name))
                mask_latencies[i].append((time.perf_counter() - arrival) * 1000.0)
        except Exception as error:
            errors.append(f"segmenter {i}: {error}")

    mailboxes = [_LatestFrame() for _ in range(count)]
    threads = [threading.Thread(target=stream, args=(i, mailboxes[i])) for i in range(count)]
    threads += [threading.Thread(target=segment, args=(i, mailboxes[i])) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    frame_to_result = LatencySummary.of([v for per in latencies for v in per])
    masks = LatencySummary.of([v for per in mask_latencies for v in per])
    asked_hz = settings.stream_fps / every
    mask_hz = masks.count / count / settings.stream_seconds
    ok = (
        not errors
        and frame_to_result.count == total * count
        and frame_to_result.p99 <= settings.budget_ms
        and mask_hz >= 0.9 * asked_hz
    )
    return {
        "streams": count,
        "frames": frame_to_result.count,
        "frame_to_result_ms": frame_to_result.as_dict(),
        "segmentation_hz_per_stream": mask_hz,
        "segmentation_hz_asked": asked_hz,
        "mask_latency_ms": masks.as_dict(),
        "ok": ok,
        "errors": errors[:5],
    }


class _OutOfTime(Exception):
    """The next stream trial would end past the run's time budget."""


def stream_capacity(
    models: StreamModels,
    frames: np.ndarray,
    settings: GpuCheckSettings,
    report: GpuReport,
    deadline: float,
    progress: Callable[[str], None],
    saved: Callable[[GpuReport], None],
) -> None:
    """The most streams that pass (doubling, then bisecting the last gap) into
    ``report.max_streams``, every trial into ``report.streams`` as it ends, and whether the
    search finished before ``deadline`` (a ``time.perf_counter()`` value)."""
    trials: dict[int, dict[str, Any]] = {}

    def trial(count: int) -> bool:
        expected = settings.stream_seconds + STREAM_START_S + models.load_seconds(count)
        if time.perf_counter() + expected > deadline:
            raise _OutOfTime(f"stopped before {count} streams: the time budget ran out")
        result = run_streams(count, models, frames, settings)
        trials[count] = result
        report.streams = [trials[n] for n in sorted(trials)]
        f2r = result["frame_to_result_ms"]
        progress(
            f"  {count:>3} streams: frame-to-result p50 {f2r['p50']:.1f} ms, p99 {f2r['p99']:.1f}"
            f" ms; masks {result['segmentation_hz_per_stream']:.2f} Hz per stream "
            f"-> {'pass' if result['ok'] else 'fail'}"
        )
        if result["ok"]:
            report.max_streams = max(report.max_streams, count)
        saved(report)
        return bool(result["ok"])

    report.capacity_search = "running"
    passed, failed = 0, None
    try:
        count = 1
        while count <= settings.max_streams:
            if not trial(count):
                failed = count
                break
            passed = count
            count *= 2
        if failed is not None and passed:
            while failed - passed > max(1, passed // 8):
                middle = (passed + failed) // 2
                if trial(middle):
                    passed = middle
                else:
                    failed = middle
        report.capacity_search = "complete"
    except _OutOfTime as stop:
        report.capacity_search = str(stop)
        progress(f"  {stop}")


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
    models = StreamModels(workflow, segmenter, settings)
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
