"""``orstream eval segmentation``: an interactive segmentation package scored in the IMIS
protocol (points with corrective clicks, box, text) on a phantom dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.export.evaluation.segmentation import Score, SegmentationReport

EPILOG = """\
data: a phantom dataset (orstream phantom make): videos/video_NN.mp4, masks/video_NN/TTTTT.png
(instrument codes) and, when present, anatomy/video_NN/TTTTT.png (101 = sella). A target is a
class of the package covering at least 100 pixels of an annotated frame.

protocol: each target is prompted on its own by points (a click where the target is deepest,
then a corrective click per round in the largest error region, with the previous round's mask
logits; scored after 1, 3 and 5 clicks, "points" after 5), by its tight box and by its class
name. The best of the decoder's 3 masks by predicted IoU is upscaled to the frame; Dice and IoU
at full resolution, threshold 0.5, averaged over an image's targets, then over images.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--package",
        type=Path,
        required=True,
        help="interactive segmentation package (orstream export onnx of a segmenter)",
    )
    parser.add_argument("--data", type=Path, required=True, help="phantom dataset root")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument(
        "--max-images", type=int, metavar="N", help="score at most N annotated frames"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="use annotated frames at least this far apart (default 1: every annotated second)",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.evaluation.segmentation import StderrProgress, evaluate_segmentation

    report = evaluate_segmentation(
        args.package,
        args.data,
        every=args.every,
        max_images=args.max_images,
        progress=StderrProgress(),
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
        return 0
    print(format_report(report, args.package, args.data))
    return 0


def format_report(report: SegmentationReport, package: Path, data: Path) -> str:
    """The readable table of a report."""
    from orstream.export.evaluation.segmentation import KINDS, PROMPTS, ROUNDS

    def cell(score: Score | None, field: str) -> str:
        return "n/a" if score is None else f"{getattr(score, field):.3f}"

    counts = ", ".join(f"{report.targets_by_kind[kind]} {kind}" for kind in KINDS)
    last = max(ROUNDS)
    lines = [
        f"interactive segmentation: {package} on {data}",
        f"{report.images} images, {report.targets} targets ({counts}); Dice and IoU at full "
        "resolution, threshold 0.5",
        "",
        f"{'prompt':<22}{'Dice':>7}{'IoU':>8}",
    ]
    rows = [(f"points ({last} clicks)", report.means["points"])]
    rows += [
        (f"  after {n} click{'s' if n > 1 else ''}", report.means[f"round_{n}"]) for n in ROUNDS
    ]
    rows += [("box", report.means["box"]), ("text", report.means["text"])]
    for title, score in rows:
        lines.append(f"{title:<22}{cell(score, 'dice'):>7}{cell(score, 'iou'):>8}")
    lines += ["", f"{'Dice by kind':<22}" + "".join(f"{prompt:>8}" for prompt in PROMPTS)]
    for kind in KINDS:
        scores = report.by_kind[kind]
        lines.append(
            f"{kind:<22}" + "".join(f"{cell(scores[prompt], 'dice'):>8}" for prompt in PROMPTS)
        )
    return "\n".join(lines)
