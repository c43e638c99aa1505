"""``orstream eval pitvis``: score PitVis submission CSVs against annotations."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.pitvis.csv_files import (
    find_annotation_files,
    find_prediction_files,
    read_annotations,
    read_instrument_submission,
    read_step_submission,
)
from orstream.pitvis.metrics import average_videos, video_instrument_metrics, video_step_metrics

LAYOUT = """\
truth: the annotations_NN.csv files, directly in DIR or in DIR/annotations/ (a PitVis dataset
root), with columns int_video,int_time,int_step,int_instrument1,int_instrument2.

predictions: one CSV per video named NN.csv or video_NN.csv, with the rows of the annotations'
int_time values, in the PitVis submission formats:
  steps        int_time,int_step
  instruments  int_time,int_instrument1,int_instrument2
  multitask    int_time,int_step,int_instrument1,int_instrument2 (both kinds in one file)
Each file is recognised by its header. Files may sit directly in DIR; a submission with both
kinds in separate files puts them in DIR/steps/ and DIR/instruments/. When a kind is
submitted, every annotated video needs a file of that kind; a kind not submitted at all is
reported as null.

metrics (per video, then averaged over videos):
  step score = (step F1 + step edit) / 2 over the frames whose truth is not -1, 11 or 13;
    step F1 = macro-F1 over the classes present (zero_division=1), step edit = 1 -
    Levenshtein(segment sequences) / max(segment counts).
  instrument F1 = multi-hot F1 over the classes 0..18 (codes -1 and -2 are no class),
    average="weighted" (each class by its true frames), zero_division=1; no frame is removed,
    out-of-patient frames included; with no true instrument in a video, unweighted.
  instrument F1 official = exactly what the challenge's evaluation_instruments.py returns: the
    same, but it fits one label binarizer on the truth and another on the prediction, so
    each side's columns are its own classes, sorted, then the absent ones, and column j of
    one is compared with column j of the other (a bug, kept to compare with its leaderboard).
  multitask score = (step score + instrument F1 official) / 2, the challenge's; multitask
    score corrected = (step score + instrument F1) / 2; with both kinds submitted.
  A video with nothing left to score (steps), or with no frame, is null and left out of the
  mean.
"""

KEYS = (
    "step_score",
    "step_f1",
    "step_edit",
    "instrument_f1",
    "instrument_f1_official",
    "multitask_score",
    "multitask_score_corrected",
)
HEADINGS = (
    "step score",
    "step F1",
    "step edit",
    "instr. F1",
    "instr. F1 official",
    "multitask",
    "multitask corrected",
)
NOTE = "n/a: not submitted, or nothing left to score; --help defines each metric"


@dataclass(frozen=True)
class PitvisReport:
    """Scores under :data:`KEYS`, per video (by two-digit id) and averaged over videos.

    NaN stands for a kind that was not submitted or a metric that is undefined.
    """

    mean: dict[str, float]
    per_video: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, object]:
        """The ``--json`` object: the mean scores, then ``per_video``; NaN becomes null."""
        return {
            **_nan_to_none(self.mean),
            "per_video": {video: _nan_to_none(scores) for video, scores in self.per_video.items()},
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``orstream eval pitvis``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = LAYOUT
    parser.add_argument(
        "--truth",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of annotations_NN.csv files, or a PitVis dataset root",
    )
    parser.add_argument(
        "--pred",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of submission CSVs (NN.csv or video_NN.csv; see below)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    """Score the predictions and print the table or the JSON object."""
    report = evaluate_pitvis(args.truth, args.pred)
    print(json.dumps(report.to_json(), indent=2) if args.json else format_table(report))
    return 0


def evaluate_pitvis(truth_dir: Path, pred_dir: Path) -> PitvisReport:
    """Score a prediction folder against a truth folder (layout: ``orstream eval pitvis -h``)."""
    truth_files = find_annotation_files(truth_dir)
    predictions = find_prediction_files(pred_dir)
    unannotated = sorted(
        (predictions.steps.keys() | predictions.instruments.keys()) - truth_files.keys()
    )
    if unannotated:
        print(
            f"orstream: warning: {pred_dir}: no annotations in {truth_dir} for predicted "
            f"video(s) {', '.join(map(str, unannotated))}; ignored",
            file=sys.stderr,
        )
    per_video: dict[str, dict[str, float]] = {}
    for video, truth_path in truth_files.items():
        truth = read_annotations(truth_path)
        scores = dict.fromkeys(KEYS, math.nan)
        if predictions.steps:
            pred_path = _prediction_path(predictions.steps, video, "step", pred_dir)
            time, step = read_step_submission(pred_path)
            _check_aligned(truth.time, truth_path, time, pred_path)
            steps = video_step_metrics(truth.step, step)
            scores.update(step_score=steps.score, step_f1=steps.f1, step_edit=steps.edit)
        if predictions.instruments:
            pred_path = _prediction_path(predictions.instruments, video, "instrument", pred_dir)
            time, slots = read_instrument_submission(pred_path)
            _check_aligned(truth.time, truth_path, time, pred_path)
            found = video_instrument_metrics(truth.instruments, slots)
            scores.update(instrument_f1=found.f1, instrument_f1_official=found.f1_official)
        scores.update(
            multitask_score=(scores["step_score"] + scores["instrument_f1_official"]) / 2,
            multitask_score_corrected=(scores["step_score"] + scores["instrument_f1"]) / 2,
        )
        per_video[f"{video:02d}"] = scores
    mean = {key: average_videos(scores[key] for scores in per_video.values()) for key in KEYS}
    return PitvisReport(mean=mean, per_video=per_video)


def format_table(report: PitvisReport) -> str:
    """The report as a fixed-width table: one row per video, then the mean."""
    rows: list[tuple[str, ...]] = [("video", *HEADINGS)]
    rows += [
        (video, *(_cell(scores[key]) for key in KEYS)) for video, scores in report.per_video.items()
    ]
    rows.append(("mean", *(_cell(report.mean[key]) for key in KEYS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS) + 1)]
    lines = [
        row[0].ljust(widths[0])
        + "".join(f"  {cell.rjust(width)}" for cell, width in zip(row[1:], widths[1:], strict=True))
        for row in rows
    ]
    rule = "  ".join("-" * width for width in widths)
    return "\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1], NOTE])


def _prediction_path(files: dict[int, Path], video: int, kind: str, pred_dir: Path) -> Path:
    if video not in files:
        raise OrstreamError(
            f"{pred_dir}: no {kind} prediction for annotated video {video} (expected "
            f"{video:02d}.csv or video_{video:02d}.csv with the {kind} header)"
        )
    return files[video]


def _check_aligned(
    truth_time: np.ndarray, truth_path: Path, time: np.ndarray, pred_path: Path
) -> None:
    """A prediction must have exactly the int_time rows of its annotations."""
    if len(time) != len(truth_time):
        raise OrstreamError(
            f"{pred_path}: {len(time)} rows but {truth_path.name} has {len(truth_time)}"
        )
    differ = np.flatnonzero(time != truth_time)
    if differ.size:
        i = int(differ[0])
        raise OrstreamError(
            f"{pred_path}: int_time {time[i]} at row {i + 1} where {truth_path.name} has "
            f"{truth_time[i]}"
        )


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _nan_to_none(scores: dict[str, float]) -> dict[str, float | None]:
    return {key: None if math.isnan(value) else value for key, value in scores.items()}
