"""Finding objects from grid clicks: clicks only inside the view, one mask per object, the
best-scored mask of an object kept."""

from __future__ import annotations

import numpy as np

from orstream.segmentation.instrument_finding import (
    DARK,
    GRID,
    MIN_AREA,
    distinct_objects,
    grid_clicks,
    tip_crops,
)

SIZE = (72, 128)
"""(H, W) of the masks; the logits are at a quarter of it."""


def _logits(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    """Logits [18, 32] positive inside the boxes (x0, y0, x1, y1 at quarter size)."""
    logits = np.full((SIZE[0] // 4, SIZE[1] // 4), -5.0, np.float32)
    for x0, y0, x1, y1 in boxes:
        logits[y0:y1, x0:x1] = 5.0
    return logits


def test_clicks_on_black_outside_the_view_are_skipped() -> None:
    image = np.full((*SIZE, 3), 120, np.uint8)
    assert len(grid_clicks(image)) == GRID[0] * GRID[1]
    image[:, : SIZE[1] // 2] = DARK - 1  # the left half is outside the round view
    clicks = grid_clicks(image)
    assert len(clicks) == GRID[0] * GRID[1] // 2
    assert all(x >= SIZE[1] / 2 for x, _ in clicks)
    assert grid_clicks(np.zeros((*SIZE, 3), np.uint8)) == []


def test_masks_of_one_object_count_once_and_the_best_scored_one_is_kept() -> None:
    logits = np.stack(
        [
            _logits((2, 2, 10, 8)),  # object A
            _logits((3, 3, 9, 7)),  # inside A: the same object, scored higher
            _logits((20, 10, 30, 16)),  # object B
            _logits((20, 2, 30, 8)),  # object C, scored below the threshold
        ]
    )
    scores = np.array([0.7, 0.9, 0.8, 0.3], np.float32)
    found = distinct_objects(logits, scores, SIZE, min_score=0.5)
    assert [item.score for item in found] == [np.float32(0.9), np.float32(0.8)]
    assert found[0].mask.shape == SIZE and found[0].mask.dtype == bool
    assert found[0].mask[14, 24] and not found[0].mask[60, 100]
    assert found[1].mask[50, 100]


def test_specks_below_the_smallest_area_are_not_objects() -> None:
    """A quarter-size logit of 2 among -5 upscales to 4 mask pixels, under the smallest object
    (4.6 of 72x128); at 5 it upscales to 12, an object."""
    specks = np.full((2, SIZE[0] // 4, SIZE[1] // 4), -5.0, np.float32)
    specks[0, 5, 5] = 2.0
    specks[1, 12, 20] = 5.0
    assert MIN_AREA * SIZE[0] * SIZE[1] > 4
    found = distinct_objects(specks, np.array([0.99, 0.95], np.float32), SIZE, 0.5)
    assert [(item.score, int(item.mask.sum())) for item in found] == [(np.float32(0.95), 12)]


def test_only_objects_with_a_tip_crop_reach_the_classifier() -> None:
    image = np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    logits = np.stack([_logits((4, 4, 28, 7)), _logits((15, 12, 16, 13))])
    found = distinct_objects(logits, np.array([0.9, 0.8], np.float32), SIZE, min_score=0.5)
    crops, objects = tip_crops(image, found)
    assert len(crops) == len(objects) >= 1
    assert objects[0] is found[0]
    assert crops[0].dtype == np.uint8 and crops[0].shape[2] == 3
