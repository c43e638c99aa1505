"""Corrective click simulation for interactive segmentation training and evaluation.

Each round looks at the current prediction's errors, takes the largest connected error region
(missed target -> a positive click, wrongly included background -> a negative click) and clicks
deep inside it, where the distance to the region's boundary is largest, as a user correcting the
mask would. Sampling among the deepest pixels uses a numpy Generator, so a seed fixes the clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from orstream.training.models.segmenter import PAD_LABEL


@dataclass(frozen=True)
class Click:
    """A click at pixel (x, y); ``positive`` adds to the mask, a negative click removes."""

    x: int
    y: int
    positive: bool


def next_click(
    prediction: np.ndarray, truth: np.ndarray, rng: np.random.Generator, depth: float = 0.8
) -> Click | None:
    """The corrective click for ``prediction`` against ``truth`` (both [H, W], nonzero = mask).

    Args:
        prediction: the current mask (all zeros before the first click).
        truth: the target mask.
        rng: the generator choosing among equally good pixels.
        depth: the click lands on a pixel whose distance to the error region's boundary (the frame
            edge counts as boundary) is at least ``depth`` times the region's largest distance.

    Returns:
        None when the prediction has no error.
    """
    if prediction.shape != truth.shape or prediction.ndim != 2:
        raise ValueError(f"masks must be 2-D and alike, got {prediction.shape} and {truth.shape}")
    predicted = prediction.astype(bool)
    target = truth.astype(bool)
    region, positive = _largest_error_region(predicted, target)
    if region is None:
        return None
    # Zero padding makes the frame edge a boundary, so clicks stay off the border.
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    ys, xs = np.nonzero(distance >= depth * distance.max())
    index = int(rng.integers(len(xs)))
    return Click(int(xs[index]), int(ys[index]), positive)


def _largest_error_region(
    predicted: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray | None, bool]:
    best: np.ndarray | None = None
    best_area = 0
    best_positive = True
    for errors, positive in ((target & ~predicted, True), (predicted & ~target, False)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            errors.astype(np.uint8), connectivity=8
        )
        if count < 2:
            continue
        component = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[component, cv2.CC_STAT_AREA])
        # A tie goes to the missed region: adding the target matters more than trimming.
        if area > best_area:
            best, best_area, best_positive = labels == component, area, positive
    return best, best_positive


def clicks_to_prompt(clicks: list[Click], max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Clicks -> (points [max_points, 2] float32 (x, y), labels [max_points] int64) for the
    segmenter's fixed point slots; unused slots carry label -1, and the latest clicks are kept
    when there are more than ``max_points``."""
    points = np.zeros((max_points, 2), dtype=np.float32)
    labels = np.full(max_points, PAD_LABEL, dtype=np.int64)
    kept = clicks[-max_points:] if max_points else []
    for slot, click in enumerate(kept):
        points[slot] = (click.x, click.y)
        labels[slot] = 1 if click.positive else 0
    return points, labels
