"""Scoring a slide package on phantom slides, whose labels and region masks are exact.

Per slide: the class (right or wrong), the tumour fraction's absolute error, and each tile's
tumour call (probability above 0.5) against its true class (the majority of the region mask
under it, :mod:`orstream.slides.tile_truth`). ``heatmap_dice`` pools the tiles of all slides:
2 |called ∩ true| / (|called| + |true|), so slides with much tumour weigh as much as they hold
and slides without tumour count through their false calls; it is 1 when no tile is tumour and
none is called.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.slides.slide_analysis import analyze_slide
from orstream.slides.slide_models import SlideModels
from orstream.slides.tile_truth import tile_classes

TUMOUR_CALL = 0.5


@dataclass(frozen=True)
class PhantomLabel:
    """A row of a phantom dataset's ``labels.csv``."""

    slide: str
    subtype: str
    fraction: float


@dataclass
class SlideScores:
    """The scores over a set of slides, and each slide's row."""

    slides: list[dict[str, Any]] = field(default_factory=list)
    called_and_true: int = 0
    called: int = 0
    true: int = 0

    def summary(self) -> dict[str, Any]:
        count = len(self.slides)
        right = sum(row["correct"] for row in self.slides)
        error = sum(abs(row["fraction"] - row["true_fraction"]) for row in self.slides)
        both = self.called + self.true
        return {
            "slides": count,
            "accuracy": round(right / count, 4),
            "fraction_mae": round(error / count, 4),
            "heatmap_dice": round(2 * self.called_and_true / both, 4) if both else 1.0,
            "tiles": sum(row["tiles"] for row in self.slides),
            "per_slide": self.slides,
        }


def read_phantom_labels(root: Path) -> list[PhantomLabel]:
    """The slides of the phantom dataset at ``root`` (``orstream slide phantom``), in order.

    Raises:
        OrstreamError: ``root`` holds no phantom labels.
    """
    path = root / "labels.csv"
    if not path.is_file():
        raise OrstreamError(f"{root}: no labels.csv (write slides with orstream slide phantom)")
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    try:
        labels = [PhantomLabel(r["slide"], r["subtype"], float(r["tumor_fraction"])) for r in rows]
    except (KeyError, ValueError) as error:
        raise OrstreamError(f"{path}: not a phantom labels file ({error})") from None
    if not labels:
        raise OrstreamError(f"{path}: lists no slides")
    return labels


def evaluate_slides(
    root: Path,
    models: SlideModels,
    on_slide: Callable[[str, dict[str, Any]], None] | None = None,
) -> SlideScores:
    """Analyse and score every slide of the phantom dataset at ``root``.

    Raises:
        OrstreamError: the dataset is incomplete, or a slide cannot be read.
    """
    import cv2

    scores = SlideScores()
    for label in read_phantom_labels(root):
        mask_path = root / "masks" / f"{label.slide}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise OrstreamError(f"{mask_path}: region mask not found or unreadable")
        analysis = analyze_slide(root / "slides" / f"{label.slide}.tiff", models)
        grid = analysis.grid
        truth = tile_classes(mask, grid.corners, grid.span, analysis.dimensions[0] / mask.shape[1])
        true = truth == TissueClass.TUMOUR
        outputs = analysis.outputs
        called = np.zeros_like(true) if outputs is None else outputs.tile_tumour > TUMOUR_CALL
        scores.called_and_true += int((called & true).sum())
        scores.called += int(called.sum())
        scores.true += int(true.sum())
        row = {
            "slide": label.slide,
            "subtype": label.subtype,
            "predicted": analysis.label,
            "correct": analysis.label == label.subtype,
            "fraction": round(analysis.tumour_fraction, 4),
            "true_fraction": label.fraction,
            "tiles": len(grid),
            "tumour_tiles": int(true.sum()),
            "called_tiles": int(called.sum()),
        }
        scores.slides.append(row)
        if on_slide is not None:
            on_slide(label.slide, row)
    return scores
