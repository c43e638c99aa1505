"""``orstream eval wsi``: a slide package's accuracy, tumour fraction error and heatmap Dice on
phantom slides it was not trained on (write them with another seed than training's)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream eval wsi``."""
    parser.add_argument(
        "--package", type=Path, help="slide package (default: the one shipped with orstream)"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="a phantom slide dataset (orstream slide phantom)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Score every slide of ``--data``; one line per slide on stderr as it finishes."""
    from orstream.slides.slide_evaluation import evaluate_slides
    from orstream.slides.slide_models import SlideModels

    def show(slide: str, row: dict[str, Any]) -> None:
        print(
            f"{slide}: {row['subtype']} -> {row['predicted']}, fraction {row['true_fraction']:.3f}"
            f" -> {row['fraction']:.3f}, {row['tiles']} tiles",
            file=sys.stderr,
        )

    summary = evaluate_slides(args.data, SlideModels(args.package), show).summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"slides        {summary['slides']} ({summary['tiles']} tiles)")
    print(f"accuracy      {summary['accuracy']:.3f}")
    print(f"fraction_mae  {summary['fraction_mae']:.4f}")
    print(f"heatmap_dice  {summary['heatmap_dice']:.3f}")
    return 0
