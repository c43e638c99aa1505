"""How many live streams one edge serves: the measurement behind ``orstream bench capacity``.

A trial plays N copies of a phantom case (an H.264 file, decoded by GStreamer) at real-time
pace through the app that ships (:class:`~orstream.edge.app.compose.EdgeApp`: one source, overlay
and sink per stream; the shared recognizer at its card's rate, batched across streams; the
segmenter too when given). The streams start at evenly spread times within
:data:`SPREAD_S`: copies of one case started together would decode the same costly frames (a
cut between scenes) at the same instant on every stream, which independent cameras never do.
A trial passes when:

- no stream's video path loses a frame: nothing dropped by the overlay's or a sink's queue,
  and no frame later than a live camera's buffer (:data:`LATE_MS`) behind its own schedule (a
  camera would have dropped it);
- frame-to-result latency, over the results of every stream, stays within the budget at p99
  (50 ms);
- with live segmentation, every stream gets masks at 90% of the segmenter's rate.

Capacity is a steady-state figure: the first :data:`WARM_UP_S` seconds of each trial, when every
stream's pipeline starts at once and models take their first frames, are not judged (they are
in the figures the trial reports as ``warm_up_p99_ms``).

The stream count doubles until a trial fails (or the most asked for passes), then the gap
between the last pass and the first failure is bisected. Every trial is printed and kept.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_CLASSIFIER
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.streams.sinks.memory import MemorySink

BUDGET_MS = 50.0
"""Frame-to-result p99 a stream count must stay within."""
LATE_MS = 200.0
"""A frame this late behind its schedule counts as lost: a live source buffers about this much
(a few frames) before it drops."""
SPREAD_S = 1.0
"""Stream ``i`` of ``n`` starts ``i / n`` of this many seconds after the first."""
WARM_UP_S = 2.0
"""Seconds at the start of a trial that are not judged (see the module docstring)."""
PHANTOM_SEED = 31337
"""Seed of the bench's case (not a training seed of the shipped models)."""


@dataclass(frozen=True)
class CapacitySettings:
    """What one capacity search plays and asks of each stream."""

    model: Path
    segmenter: Path | None = None
    width: int = 1280
    height: int = 720
    fps: float = 24.0
    seconds: int = 20
    record: bool = False
    max_streams: int = 16
    budget_ms: float = BUDGET_MS


@dataclass(frozen=True)
class Trial:
    """One trial: N streams at once, and how they fared (the worst stream's figures)."""

    streams: int
    p99_ms: float
    """Frame-to-result p99 over every stream's results after the warm-up."""
    worst_stream_p99_ms: float
    """The p99 of the stream that fared worst, after the warm-up."""
    warm_up_p99_ms: float
    """Frame-to-result p99 during the warm-up (not judged)."""
    dropped: int
    """Frames lost on the video paths of all streams together (queues dropped or too late)."""
    late: int
    """Of those, frames later than :data:`LATE_MS` behind their schedule."""
    cpu_percent: float
    """Process CPU time over the trial's wall time (100 = one core busy)."""
    frames_in: int
    frames_out: int
    worst_lag_ms: float
    wall_s: float
    ok: bool
    masks_hz: float | None = None
    """With live segmentation: masks per second of the stream that got fewest (it must reach
    90% of the segmenter's rate)."""
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per stage (summed over streams): time per item p50/p99 in ms and items; where time goes."""


@dataclass
class CapacityReport:
    """The search: every trial, and the largest count that passed."""

    settings: CapacitySettings
    trials: list[Trial] = field(default_factory=list)
    streams: int = 0

    def as_json(self) -> dict[str, Any]:
        settings = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self.settings).items()
        }
        return {
            "streams": self.streams,
            "width": self.settings.width,
            "height": self.settings.height,
            "fps": self.settings.fps,
            "trials": [asdict(trial) for trial in self.trials],
            "settings": settings,
        }


def render_case(settings: CapacitySettings, folder: Path, say: Callable[[str], None]) -> Path:
    """The phantom case every stream plays (rendered once)."""
    from orstream.pitvis.layout import video_path
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    say(
        f"rendering a {settings.seconds} s {settings.width}x{settings.height} phantom case at "
        f"{settings.fps:g} fps (seed {PHANTOM_SEED})"
    )
    spec = PhantomSpec(
        1,
        settings.seconds,
        PHANTOM_SEED,
        width=settings.width,
        height=settings.height,
        fps=settings.fps,
    )
    write_dataset(spec, folder)
    return video_path(folder, spec.first_video)


def run_trial(settings: CapacitySettings, video: Path, streams: int, work: Path) -> Trial:
    """Play ``streams`` copies of ``video`` at once through the shipped app."""
    ids = stream_ids(streams)
    sections: dict[str, Any] = {
        "sources": [{"uri": str(video), "stream_id": sid, "realtime": True} for sid in ids],
        "model": {"package": str(settings.model)},
        "grpc": {"enabled": False},
    }
    if settings.segmenter is not None:
        sections["segmentation"] = {
            "package": str(settings.segmenter),
            "classifier": str(SHIPPED_CLASSIFIER),
        }
    if settings.record:
        sections["record"] = {"path": str(work / "{stream}.mp4")}
    sinks: dict[str, list[SinkSpec]] = {}
    if not settings.record:
        sinks = null_sinks(ids)
    app = EdgeApp(parse_config(sections, "bench capacity"), sinks=sinks)
    return play(app, ids, settings.fps, settings.budget_ms)


def stream_ids(count: int) -> list[str]:
    return [f"s{index:02d}" for index in range(count)]


def null_sinks(ids: list[str]) -> dict[str, list[SinkSpec]]:
    """A sink per stream that keeps nothing: the overlay is drawn on every frame, as for a
    display, and nothing else is paid for."""
    return {sid: [SinkSpec("null", _null_sink)] for sid in ids}


def play(app: EdgeApp, ids: list[str], fps: float, budget_ms: float) -> Trial:
    """Run an app's streams (their starts spread over :data:`SPREAD_S`) and judge the trial."""
    for index, sid in enumerate(ids):
        app.streams[sid].source.start_after_s = SPREAD_S * index / len(ids)
    results = app.hub.subscribe(ids, ["step"], capacity=1 << 20)
    cpu_before = _cpu_s()
    started = time.perf_counter()
    app.run()
    wall = time.perf_counter() - started
    cpu = (_cpu_s() - cpu_before) / wall * 100.0
    failures = app.failures()
    if failures:
        raise OrstreamError(f"a trial of {len(ids)} streams failed: {'; '.join(failures)}")
    judged: dict[str, list[float]] = {sid: [] for sid in ids}
    warm_up: list[float] = []
    while (result := results.get(timeout_s=0)) is not None:
        steady = result.pts_ns >= WARM_UP_S * 1e9
        (judged[result.stream_id] if steady else warm_up).append(result.latency_ms)
    late, dropped, worst_lag = 0, 0, 0.0
    for sid in ids:
        lags = app.streams[sid].source.lag.samples()[round(WARM_UP_S * fps) :]
        late += sum(lag > LATE_MS for lag in lags)
        worst_lag = max(worst_lag, max(lags, default=0.0))
        dropped += app.video_dropped(sid)
    pooled = LatencySummary.of([ms for values in judged.values() for ms in values]).p99
    worst_p99 = max(LatencySummary.of(values).p99 for values in judged.values())
    masks_ok, masks_hz = True, None
    if app.segmentation is not None:
        seconds = max(app.streams[sid].source.frames_in for sid in ids) / fps
        masks_hz = min(app.segmentation.segmented.get(sid, 0) for sid in ids) / seconds
        masks_ok = masks_hz >= 0.9 * app.segmentation.rate_hz
    status = app.status()
    return Trial(
        streams=len(ids),
        p99_ms=pooled,
        worst_stream_p99_ms=worst_p99,
        warm_up_p99_ms=LatencySummary.of(warm_up).p99,
        dropped=dropped + late,
        late=late,
        cpu_percent=cpu,
        frames_in=status.video_frames_in,
        frames_out=status.video_frames_out,
        worst_lag_ms=worst_lag,
        wall_s=wall,
        ok=dropped + late == 0 and pooled <= budget_ms and masks_ok,
        masks_hz=masks_hz,
        stages=_stage_costs(status.stages, ids),
    )


def _null_sink(width: int, height: int, fps: float) -> MemorySink:
    return MemorySink(keep_images=False)


def _stage_costs(stages: Any, ids: list[str]) -> dict[str, dict[str, float]]:
    """Per kind of stage (``s03.overlay`` -> ``overlay``): items, and the worst stream's time
    per item."""
    merged: dict[str, dict[str, float]] = {}
    for stage in stages:
        stream, _, rest = stage.name.partition(".")
        kind = rest if stream in ids and rest else stage.name
        entry = merged.setdefault(kind, {"items": 0, "p50_ms": 0.0, "p99_ms": 0.0})
        entry["items"] += stage.processed
        if stage.latency.count:
            entry["p50_ms"] = max(entry["p50_ms"], stage.latency.p50)
            entry["p99_ms"] = max(entry["p99_ms"], stage.latency.p99)
    return merged


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def search(
    max_streams: int,
    trial: Callable[[int], Trial],
    on_trial: Callable[[Trial], None],
    may_run: Callable[[int], str | None] = lambda count: None,
) -> tuple[int, str]:
    """The most streams whose trial passes: double until a trial fails (or ``max_streams``
    passes), then bisect the gap to within an eighth of the count passed.

    Args:
        max_streams: the most streams tried.
        trial: runs a trial of that many streams.
        on_trial: told each trial as it ends.
        may_run: None when a trial of that many streams may run, else why not (a time
            budget): the search stops there, saying so.

    Returns:
        (the count found, "complete" or why the search stopped early).
    """
    passed, failed = 0, None

    def attempt(count: int) -> bool:
        result = trial(count)
        on_trial(result)
        return result.ok

    count = 1
    try:
        while count <= max_streams:
            if (reason := may_run(count)) is not None:
                return passed, reason
            if not attempt(count):
                failed = count
                break
            passed = count
            if count == max_streams:
                break
            count = min(count * 2, max_streams)
        while failed is not None and failed - passed > max(1, passed // 8):
            middle = (passed + failed) // 2
            if (reason := may_run(middle)) is not None:
                return passed, reason
            if attempt(middle):
                passed = middle
            else:
                failed = middle
    except KeyboardInterrupt:
        return passed, "interrupted"
    return passed, "complete"


def find_capacity(
    settings: CapacitySettings,
    say: Callable[[str], None],
    saved: Callable[[CapacityReport], None] = lambda report: None,
) -> CapacityReport:
    """Render the case and search (see the module docstring)."""
    report = CapacityReport(settings)
    with tempfile.TemporaryDirectory(prefix="orstream-capacity-") as scratch:
        work = Path(scratch)
        video = render_case(settings, work / "case", say)

        def on_trial(trial: Trial) -> None:
            report.trials.append(trial)
            say(describe_trial(trial, settings.budget_ms))
            saved(report)

        report.streams, _ = search(
            settings.max_streams, lambda n: run_trial(settings, video, n, work), on_trial
        )
    saved(report)
    return report


def describe_trial(trial: Trial, budget_ms: float) -> str:
    verdict = "pass" if trial.ok else "fail"
    return (
        f"{trial.streams:3d} streams: frame-to-result p99 {trial.p99_ms:6.1f} ms (budget "
        f"{budget_ms:g}), video frames lost {trial.dropped} ({trial.late} late), worst lag "
        f"{trial.worst_lag_ms:.0f} ms"
        + ("" if trial.masks_hz is None else f", masks {trial.masks_hz:.2f} Hz per stream")
        + f", CPU {trial.cpu_percent:.0f}% -> {verdict}"
    )


def write_json(report: CapacityReport, path: Path) -> None:
    path.write_text(json.dumps(report.as_json(), indent=2) + "\n")


def say_stderr(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
