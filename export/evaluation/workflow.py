"""A workflow package scored on annotated cases exactly as the edge runs it.

Each case is decoded frame by frame (:class:`~orstream.streams.sources.pyav_source.PyAVSource`),
the model's rate picks the frames it sees (:class:`~orstream.edge.graph.rate_sampler.RateSampler`),
:class:`~orstream.edge.models.workflow_model.WorkflowModel` turns each into a result with the
online step smoothing and the two instrument slots, and
:class:`~orstream.edge.operators.pitvis_writer.PitvisResultsWriter` makes the per-second
predictions the edge would submit. Only the pacing differs from a live run: frames come as fast
as they decode, so no frame is dropped for being late. The scores are those of ``orstream eval
pitvis``, per case, per case-length bucket (a model that learned how long steps last, rather
than what is in view, fails on cases shorter or longer than its training ones), and the
instrument F1 of each class over every second of every case.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.edge.backends import create_backend
from orstream.edge.graph.rate_sampler import RateSampler
from orstream.edge.models.mask_naming import MaskNaming
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.pitvis_writer import PitvisResultsWriter
from orstream.edge.operators.segmentation import SegmentationOp
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_CODES, instrument_name
from orstream.latency import LatencySummary
from orstream.package.loading import ModelPackage
from orstream.pitvis.csv_files import (
    INSTRUMENTS_FOLDER,
    STEPS_FOLDER,
    read_annotations,
    write_instrument_submission,
    write_step_submission,
)
from orstream.pitvis.layout import find_annotated_videos
from orstream.pitvis.metrics import average_videos, video_instrument_metrics, video_step_metrics
from orstream.streams.sources.pyav_source import PyAVSource

TASK = "workflow_recognition"
CASE_KEYS = ("step_score", "step_f1", "step_edit", "instrument_f1", "instrument_f1_official")
DEFAULT_BUCKET_EDGES = (120, 240)
"""Case lengths in seconds where one bucket ends and the next begins."""


@dataclass(frozen=True)
class CaseScores:
    """The PitVis scores of one case (NaN where nothing was left to score)."""

    video: int
    seconds: int
    scores: dict[str, float]


@dataclass(frozen=True)
class ClassF1:
    """One instrument class over every second of every case: ``support`` seconds show it,
    ``predicted`` seconds name it."""

    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class WorkflowReport:
    """What :func:`evaluate_workflow` measured."""

    package: str
    instruments: str
    """What named the instruments: the recognizer's head, or live masks (their models, rate)."""
    cases: list[CaseScores]
    bucket_edges: tuple[int, ...]
    per_class: dict[str, ClassF1]
    frame_latency: LatencySummary
    """Per sampled frame: pre-processing, the backend and the online conclusion."""

    @property
    def mean(self) -> dict[str, float]:
        return _mean(self.cases)

    def buckets(self) -> dict[str, tuple[list[int], dict[str, float]]]:
        """Bucket label -> (its cases, their mean scores), for buckets that hold a case."""
        grouped: dict[str, list[CaseScores]] = {}
        for case in self.cases:
            grouped.setdefault(bucket_label(case.seconds, self.bucket_edges), []).append(case)
        order = [bucket_label(edge, self.bucket_edges) for edge in (0, *self.bucket_edges)]
        return {
            label: ([case.video for case in grouped[label]], _mean(grouped[label]))
            for label in order
            if label in grouped
        }

    def to_json(self) -> dict[str, object]:
        return {
            "package": self.package,
            "instruments": self.instruments,
            **_nulls(self.mean),
            "per_bucket": {
                label: {"videos": videos, **_nulls(scores)}
                for label, (videos, scores) in self.buckets().items()
            },
            "per_video": {
                f"{case.video:02d}": {"seconds": case.seconds, **_nulls(case.scores)}
                for case in self.cases
            },
            "instrument_f1_per_class": {
                name: {
                    "f1": _null(entry.f1),
                    "support": entry.support,
                    "predicted": entry.predicted,
                }
                for name, entry in self.per_class.items()
            },
            "frame_latency_ms": self.frame_latency.as_dict(),
        }


def bucket_label(seconds: int, edges: Sequence[int]) -> str:
    """The length bucket of a case: ``<120 s``, ``120-239 s``, ``>=240 s`` for edges 120, 240."""
    if not edges or seconds < edges[0]:
        return f"<{edges[0]} s" if edges else "all"
    for low, high in itertools.pairwise(edges):
        if seconds < high:
            return f"{low}-{high - 1} s"
    return f">={edges[-1]} s"


def parse_bucket_edges(text: str) -> tuple[int, ...]:
    """``120,240`` -> (120, 240); the edges must be positive and increasing."""
    try:
        edges = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise OrstreamError(
            f"buckets {text!r}: give case lengths in seconds, e.g. 120,240"
        ) from None
    if not edges or edges[0] <= 0 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise OrstreamError(f"buckets {text!r}: give increasing positive seconds, e.g. 120,240")
    return edges


def progress_to_stderr(message: str) -> None:
    print(f"eval workflow: {message}", file=sys.stderr, flush=True)


def play_case(
    model: WorkflowModel,
    video_file: Path,
    video: int,
    seconds: int,
    segmentation: SegmentationOp | None = None,
) -> tuple[np.ndarray, list[float]]:
    """One case through the edge's path: per-second rows ``(step, slot 1, slot 2)`` for its
    ``seconds`` annotated seconds, and each recognized frame's time in ms.

    With ``segmentation``, the frames its rate picks are segmented and each recognizer result
    waits for the masks of its frame to name its instruments
    (:class:`~orstream.edge.models.mask_naming.MaskNaming`); here it waits as long as it takes,
    as live it waits at most half a second.
    """
    stream = f"video_{video:02d}"
    source = PyAVSource(video_file, stream_id=stream)
    sampler = RateSampler(model.rate_hz)
    segment = None if segmentation is None else RateSampler(segmentation.rate_hz)
    naming = MaskNaming(clock=lambda: 0)  # a wait that never runs out
    writer = PitvisResultsWriter(Path(), video)
    times_ms = []
    for frame in source.frames():
        if sampler.take(frame):
            started = time.perf_counter_ns()
            result = model.infer([frame])[0]
            times_ms.append((time.perf_counter_ns() - started) / 1e6)
            for done in [result] if segmentation is None else naming.hold(result):
                writer.add(done)
        if segmentation is not None and segment is not None and segment.take(frame):
            embedding = segmentation.prompter.model.embed(frame.image)
            for done in naming.note(segmentation.masks_of(frame, embedding)):
                writer.add(done)
    for done in naming.flush():
        writer.add(done)
    model.forget(stream)
    if segmentation is not None:
        segmentation.live_masks.forget(stream)
    table = writer.table(seconds)
    if table is None:
        raise OrstreamError(f"{video_file}: no frame decoded")
    return table, times_ms


def evaluate_workflow(
    package: ModelPackage,
    backends: Sequence[str],
    data: Path,
    segmentation: SegmentationOp | None = None,
    videos: Sequence[int] | None = None,
    bucket_edges: Sequence[int] = DEFAULT_BUCKET_EDGES,
    predictions: Path | None = None,
    progress: Callable[[str], None] = progress_to_stderr,
) -> WorkflowReport:
    """Score a workflow package on the annotated cases of ``data`` (all of them, or
    ``videos``), on the first of ``backends`` that runs it and passes its golden check; with
    ``segmentation`` (live masks with an instrument classifier), the masks name the
    instruments as the edge's do (:func:`play_case`).

    With ``predictions``, the per-second predictions are written there as PitVis submission
    CSVs (``steps/`` and ``instruments/``), which ``orstream eval pitvis`` scores alike.

    Raises:
        OrstreamError: not a workflow package, a case missing from ``data``, or a bad video.
    """
    if package.card.task != TASK:
        raise OrstreamError(f"{package.root} is a {package.card.task} package, not {TASK}")
    model = WorkflowModel(package, create_backend(backends, package))
    found = find_annotated_videos(data)
    chosen = sorted(found) if videos is None else list(videos)
    missing = [video for video in chosen if video not in found]
    if missing:
        raise OrstreamError(f"{data}: no annotated video {', '.join(map(str, missing))}")
    cases, truth_slots, pred_slots, latencies = [], [], [], []
    for number, video in enumerate(chosen, 1):
        video_file, annotations_file = found[video]
        truth = read_annotations(annotations_file)
        started = time.monotonic()
        table, times_ms = play_case(model, video_file, video, len(truth.time), segmentation)
        latencies += times_ms
        if predictions is not None:
            name = f"video_{video:02d}.csv"
            write_step_submission(predictions / STEPS_FOLDER / name, truth.time, table[:, 0])
            write_instrument_submission(
                predictions / INSTRUMENTS_FOLDER / name, truth.time, table[:, 1:]
            )
        steps = video_step_metrics(truth.step, table[:, 0])
        found_instruments = video_instrument_metrics(truth.instruments, table[:, 1:])
        case = CaseScores(
            video,
            len(truth.time),
            {
                "step_score": steps.score,
                "step_f1": steps.f1,
                "step_edit": steps.edit,
                "instrument_f1": found_instruments.f1,
                "instrument_f1_official": found_instruments.f1_official,
            },
        )
        cases.append(case)
        truth_slots.append(truth.instruments)
        pred_slots.append(table[:, 1:])
        progress(
            f"[{number}/{len(chosen)}] video {video:02d} ({case.seconds} s): step score "
            f"{_text(steps.score)}, instrument F1 {_text(found_instruments.f1)} "
            f"({time.monotonic() - started:.1f} s)"
        )
    return WorkflowReport(
        package=str(package.root),
        instruments="recognizer"
        if segmentation is None
        else f"{'+'.join(segmentation.models)} at {segmentation.rate_hz:g} Hz",
        cases=cases,
        bucket_edges=tuple(bucket_edges),
        per_class=class_f1(np.concatenate(truth_slots), np.concatenate(pred_slots)),
        frame_latency=LatencySummary.of(latencies),
    )


def class_f1(truth: np.ndarray, pred: np.ndarray) -> dict[str, ClassF1]:
    """F1 of each instrument class (and of "no instrument") over per-second slot rows
    ([N, 2] each), for the classes either side names."""
    scores = {}
    for code in INSTRUMENT_CODES:
        shown, named = (truth == code).any(axis=1), (pred == code).any(axis=1)
        support, predicted = int(shown.sum()), int(named.sum())
        if support == 0 and predicted == 0:
            continue
        hits = int((shown & named).sum())
        scores[instrument_name(code)] = ClassF1(
            2 * hits / (support + predicted), support, predicted
        )
    return scores


def _mean(cases: Sequence[CaseScores]) -> dict[str, float]:
    return {key: average_videos(case.scores[key] for case in cases) for key in CASE_KEYS}


def _null(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nulls(scores: dict[str, float]) -> dict[str, float | None]:
    return {key: _null(value) for key, value in scores.items()}


def _text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
