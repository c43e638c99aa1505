"""Finding instruments without naming them first: clicks on a grid, one mask per object.

Prompting the segmenter with class names does not find instruments (its text prompts find the
most salient instrument whatever name they are given), so instruments are found with clicks
and named afterwards from tip crops by the instrument classifier:

1. **Clicks** on a :data:`GRID` over the frame (:func:`grid_clicks`; points on black, outside the
   endoscope's round view, are skipped) go to the prompt decoder, on the embedding the encoder
   made once.
2. **Objects** (:func:`distinct_objects`): masks whose predicted IoU is below ``min_score`` or
   that are smaller than :data:`MIN_AREA` of the frame are dropped; of masks covering the same
   object (:data:`SAME_OBJECT` of the smaller one inside the larger) the one with the higher
   predicted IoU is kept.
3. **Crops** (:func:`tip_crops`): each object's tip crop, what the classifier names it from.

The edge's live masks (:class:`orstream.edge.models.live_masks.LiveMasks`) show the named
objects on the OR display; the vision-language model reads the same evidence as one visual
token per frame (:class:`orstream.vlm.visual.instrument_evidence.InstrumentEvidence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from orstream.segmentation.instrument_crop import tip_crop

GRID = (6, 10)
"""Rows and columns of the clicks that find instruments."""
MIN_SCORE = 0.5
"""Smallest predicted IoU of a mask that is kept, unless a caller says otherwise."""
MIN_AREA = 0.0005
"""Smallest object kept, as a fraction of the frame (400 pixels of a 720p frame)."""
SAME_OBJECT = 0.5
"""Two masks are the same object when this fraction of the smaller one lies in the larger."""
DARK = 20
"""Grid points whose pixel is darker than this (every channel) are outside the view."""


@dataclass(frozen=True)
class Found:
    """One object the grid's clicks found."""

    logits: np.ndarray
    """[H/4, W/4] the decoder's logits."""
    mask: np.ndarray
    """bool [H, W] at the segmenter's input size."""
    score: float
    """The decoder's predicted IoU."""


def grid_clicks(image: np.ndarray) -> list[tuple[float, float]]:
    """The grid's click points (x, y) on the RGB ``image`` that lie inside the view."""
    height, width = image.shape[:2]
    rows, columns = GRID
    points = []
    for row in range(rows):
        for column in range(columns):
            x, y = (column + 0.5) * width / columns, (row + 0.5) * height / rows
            if image[int(y), int(x)].max() >= DARK:
                points.append((x, y))
    return points


def distinct_objects(
    logits: np.ndarray, scores: np.ndarray, input_size: tuple[int, int], min_score: float
) -> list[Found]:
    """One mask per object of the clicks' decoder outputs (logits [N, H/4, W/4], predicted IoU
    [N]), masks at ``input_size`` (H, W), best predicted IoU first."""
    height, width = input_size
    min_pixels = MIN_AREA * height * width
    kept: list[Found] = []
    for row in np.argsort(-scores, kind="stable"):
        if scores[row] < min_score:
            break
        mask = cv2.resize(logits[row], (width, height), interpolation=cv2.INTER_LINEAR) > 0
        area = int(mask.sum())
        if area < min_pixels:
            continue
        if any(
            (mask & other.mask).sum() >= SAME_OBJECT * min(area, other.mask.sum()) for other in kept
        ):
            continue
        kept.append(Found(logits[row], mask, float(scores[row])))
    return kept


def tip_crops(image: np.ndarray, found: list[Found]) -> tuple[list[np.ndarray], list[Found]]:
    """The tip crops of the objects that give one, and those objects, in order (``image`` at
    the segmenter's input size, as the masks are)."""
    crops, objects = [], []
    for item in found:
        crop = tip_crop(image, item.mask)
        if crop is not None:
            crops.append(crop)
            objects.append(item)
    return crops, objects
