"""How well a binary mask matches another, and where a mask lies: shared by the evaluation, the
edge's prompt answers and the demo's check against the phantom's masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Score:
    """Dice and IoU of one mask, or a mean of them."""

    dice: float
    iou: float

    def as_dict(self) -> dict[str, float]:
        return {"dice": self.dice, "iou": self.iou}


def score_mask(prediction: np.ndarray, truth: np.ndarray) -> Score:
    """Dice and IoU of two boolean masks of the same size (1.0 for two empty masks)."""
    intersection = int(np.count_nonzero(prediction & truth))
    predicted, actual = int(np.count_nonzero(prediction)), int(np.count_nonzero(truth))
    union = predicted + actual - intersection
    if union == 0:
        return Score(1.0, 1.0)
    return Score(2 * intersection / (predicted + actual), intersection / union)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight (x0, y0, x1, y1) bounds of a boolean mask, x1 and y1 exclusive (the edges a box
    prompt takes); zeros for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
