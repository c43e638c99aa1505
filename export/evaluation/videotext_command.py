"""``orstream eval videotext``: a video-text package on held-out phantom cases: retrieval
recall, zero-shot online steps, a linear probe, and the supervised recognizer beside them."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.export.evaluation.videotext import VideoTextReport

EPILOG = """\
retrieval: every narrated clip of the held-out cases (the frames training sampled, fed one by
one from a fresh state) against every narration; t2v_rK / v2t_rK: recall at K both ways.

steps: each held-out case played live at the package's clip rate, one prediction per clip
frame, smoothed online; each annotated second takes the latest prediction; the PitVis step
score (macro F1 and edit score) per case, then averaged. zeroshot_step_score: the nearest step
prompt; probe_step_score: a softmax regression fitted on the training cases' clip embeddings;
supervised_step_score: the workflow package given by --supervised (the shipped one by default).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--package", type=Path, required=True, help="video-text package (orstream export onnx)"
    )
    parser.add_argument("--data", type=Path, required=True, help="phantom dataset root")
    parser.add_argument(
        "--videos", metavar="LIST", help="held-out cases, e.g. 11-12 (default: the card's val)"
    )
    parser.add_argument(
        "--probe-videos",
        metavar="LIST",
        help="cases to fit the linear probe on, e.g. 1-10 (default: the card's train cases)",
    )
    parser.add_argument(
        "--supervised",
        type=Path,
        metavar="PKG",
        help="workflow package scored beside it (default: the shipped recognizer)",
    )
    parser.add_argument(
        "--no-supervised", action="store_true", help="leave the supervised recognizer out"
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from orstream.edge.models.shipped import SHIPPED_PACKAGE
    from orstream.export.evaluation.videotext import evaluate_videotext
    from orstream.pitvis.layout import parse_videos

    report = evaluate_videotext(
        args.package,
        args.data,
        videos=parse_videos(args.videos) if args.videos else None,
        probe_videos=parse_videos(args.probe_videos) if args.probe_videos else None,
        supervised=None if args.no_supervised else (args.supervised or SHIPPED_PACKAGE),
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(format_report(report, args.package, args.data))
    return 0


def _value(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_report(report: VideoTextReport, package: Path, data: Path) -> str:
    """The readable table of a report."""
    recall = report.recall
    lines = [
        f"video-text: {package} on {data}",
        f"held-out videos {report.videos}; probe fitted on {report.probe_videos}",
        "",
        f"retrieval over {report.clips} narrated clips   R@1    R@5    R@10",
        "  text -> video" + " " * 27 + "".join(f"{recall[f't2v_r{k}']:<7.3f}" for k in (1, 5, 10)),
        "  video -> text" + " " * 27 + "".join(f"{recall[f'v2t_r{k}']:<7.3f}" for k in (1, 5, 10)),
        "",
        f"{'PitVis step score (online)':<30}{'mean':>7}"
        + "".join(f"{f'video {v}':>10}" for v in report.videos),
    ]
    rows = [
        ("zero-shot (step prompts)", report.zeroshot_step_score, report.zeroshot_per_video),
        ("linear probe", report.probe_step_score, report.probe_per_video),
    ]
    if report.supervised is not None:
        rows.append(
            ("supervised recognizer", report.supervised_step_score, report.supervised_per_video)
        )
    for title, mean, per_video in rows:
        lines.append(
            f"{title:<30}{_value(mean):>7}"
            + "".join(f"{_value(per_video[v]):>10}" for v in report.videos)
        )
    return "\n".join(lines)
