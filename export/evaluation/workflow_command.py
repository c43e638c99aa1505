"""``orstream eval workflow``: a workflow package on annotated cases, online as the edge runs it,
scored per case, per case-length bucket and per instrument class."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.edge.operators.segmentation import SegmentationOp
    from orstream.export.evaluation.workflow import WorkflowReport

EPILOG = """\
Each case is decoded frame by frame; the package's rate (its clip fps) picks the frames it sees,
and each goes through the edge's recognizer: pre-processing, the graph with the stream's state,
online step smoothing and the two instrument slots at the card's threshold. Each annotated
second takes the latest prediction, as the edge's PitVis writer does. Frames are not paced,
so none is dropped for being late.

scores (per case, then averaged): the PitVis step score (macro F1 and edit score, frames of
truth -1, 11 and 13 left out) and the instrument F1 (weighted over classes 0..18, no frame
removed; instrument_f1_official as the challenge's script). per_bucket: the same means over the
cases in each length bucket. instrument_f1_per_class: each class over every second of every
case. frame_latency_ms: the recognizer's time per sampled frame, pre-processing included.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--package",
        type=Path,
        metavar="PKG",
        help="workflow package (default: the shipped recognizer)",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="data set root in the PitVis layout (a phantom)"
    )
    parser.add_argument(
        "--videos", metavar="LIST", help="cases to score, e.g. 1-4,7 (default: all)"
    )
    parser.add_argument(
        "--buckets",
        default="120,240",
        metavar="SECONDS",
        help="case lengths where the length buckets split (default: 120,240)",
    )
    parser.add_argument(
        "--instruments",
        choices=("masks", "recognizer"),
        default="masks",
        help="what names the instruments: segmenter masks named by the instrument classifier "
        "(the default, as the edge does with both packages) or the recognizer's own head",
    )
    parser.add_argument(
        "--segmenter", type=Path, metavar="PKG", help="segmenter (default: the shipped one)"
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        metavar="PKG",
        help="instrument classifier (default: the shipped one)",
    )
    parser.add_argument(
        "--segmentation-rate",
        type=float,
        metavar="HZ",
        help="frames per second the live masks segment (default: the segmenter card's rate)",
    )
    parser.add_argument(
        "--backend",
        default="onnxruntime",
        metavar="LIST",
        help="backends to try in order, e.g. tensorrt:cuda,onnxruntime (default: onnxruntime)",
    )
    parser.add_argument(
        "--pred",
        type=Path,
        metavar="DIR",
        help="also write the predictions there as PitVis submission CSVs",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from orstream.edge.models.shipped import SHIPPED_PACKAGE
    from orstream.export.evaluation.workflow import evaluate_workflow, parse_bucket_edges
    from orstream.package.loading import load_package
    from orstream.pitvis.layout import parse_videos

    edges = parse_bucket_edges(args.buckets)
    videos = parse_videos(args.videos) if args.videos else None
    package = load_package(args.package or SHIPPED_PACKAGE)
    backends = [entry.strip() for entry in args.backend.split(",")]
    segmentation = None
    if args.instruments == "masks":
        segmentation = _live_masks(args, backends)
    report = evaluate_workflow(
        package,
        backends,
        args.data,
        segmentation=segmentation,
        videos=videos,
        bucket_edges=edges,
        predictions=args.pred,
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(format_report(report))
    return 0


def _live_masks(args: argparse.Namespace, backends: list[str]) -> SegmentationOp:
    """The edge's live masks operator, as ``segmentation:`` with a classifier builds it."""
    from orstream.edge.models.frame_prompter import FramePrompter
    from orstream.edge.models.instrument_classifier import InstrumentClassifier
    from orstream.edge.models.live_masks import LiveMasks
    from orstream.edge.models.segmenter_model import SegmenterModel
    from orstream.edge.models.shipped import SHIPPED_CLASSIFIER, SHIPPED_SEGMENTER
    from orstream.edge.operators.segmentation import SegmentationOp
    from orstream.package.loading import load_package

    segmenter = SegmenterModel.load(
        load_package(args.segmenter or SHIPPED_SEGMENTER), "cpu", backends
    )
    classifier = InstrumentClassifier.load(
        load_package(args.classifier or SHIPPED_CLASSIFIER), "cpu", backends
    )
    return SegmentationOp(
        FramePrompter(segmenter, keep_frames=1, keep_embeddings=1),
        LiveMasks(segmenter, classifier),
        args.segmentation_rate,
    )


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_report(report: WorkflowReport) -> str:
    """The readable tables of a report."""
    lines = [
        f"workflow: {report.package}; instruments named by {report.instruments}",
        "",
        f"{'case':<12}{'seconds':>8}{'step score':>12}{'step F1':>9}{'edit':>7}{'instr. F1':>11}",
    ]
    for case in report.cases:
        scores = case.scores
        lines.append(
            f"{f'video {case.video:02d}':<12}{case.seconds:>8}{_cell(scores['step_score']):>12}"
            f"{_cell(scores['step_f1']):>9}{_cell(scores['step_edit']):>7}"
            f"{_cell(scores['instrument_f1']):>11}"
        )
    mean = report.mean
    lines += [
        f"{'mean':<20}{_cell(mean['step_score']):>12}{_cell(mean['step_f1']):>9}"
        f"{_cell(mean['step_edit']):>7}{_cell(mean['instrument_f1']):>11}",
        "",
        f"{'length bucket':<20}{'cases':>6}{'step score':>12}{'instr. F1':>11}",
    ]
    for label, (videos, scores) in report.buckets().items():
        lines.append(
            f"{label:<20}{len(videos):>6}{_cell(scores['step_score']):>12}"
            f"{_cell(scores['instrument_f1']):>11}"
        )
    lines += ["", f"{'instrument (all cases)':<32}{'F1':>7}{'true s':>8}{'named s':>9}"]
    for name, entry in report.per_class.items():
        lines.append(f"{name:<32}{_cell(entry.f1):>7}{entry.support:>8}{entry.predicted:>9}")
    lines += ["", f"recognizer per sampled frame: {report.frame_latency.describe()}"]
    return "\n".join(lines)
