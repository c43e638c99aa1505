"""Drawing primitives of the overlay: translucent panels, text and bars, all clipped to the frame.

Panels blend only their own rectangle, against a cached solid fill, so a panel costs a fraction of
a millisecond whatever the frame size.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from orstream.edge.overlay.palette import Colour
from orstream.edge.overlay.style import Font


class Box(NamedTuple):
    """A rectangle in pixels: columns ``x0:x1`` and rows ``y0:y1`` (end-exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def clip(box: Box, image: np.ndarray) -> Box:
    """``box`` cut to the image (possibly empty)."""
    height, width = image.shape[:2]
    return Box(
        min(max(box.x0, 0), width),
        min(max(box.y0, 0), height),
        min(max(box.x1, 0), width),
        min(max(box.y1, 0), height),
    )


@lru_cache(maxsize=64)
def _solid(height: int, width: int, colour: Colour) -> np.ndarray:
    fill = np.empty((height, width, 3), np.uint8)
    fill[:] = colour
    fill.flags.writeable = False
    return fill


def fill_panel(image: np.ndarray, box: Box, colour: Colour, opacity: float) -> None:
    """Blend ``colour`` over ``box`` with the given opacity (1 paints it solid)."""
    x0, y0, x1, y1 = clip(box, image)
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    if opacity >= 1.0:
        roi[:] = colour
        return
    cv2.addWeighted(roi, 1.0 - opacity, _solid(y1 - y0, x1 - x0, colour), opacity, 0.0, dst=roi)


def draw_text(image: np.ndarray, text: str, font: Font, x: int, top: int, colour: Colour) -> None:
    """Draw ``text`` anti-aliased with its left edge at ``x`` and its cap line at ``top``."""
    cv2.putText(
        image,
        text,
        (x, top + font.height),
        font.face,
        font.scale,
        colour,
        font.thickness,
        cv2.LINE_AA,
    )


def draw_bar(image: np.ndarray, box: Box, fraction: float, colour: Colour, track: Colour) -> None:
    """A gauge: ``fraction`` (clamped to 0..1) of ``box`` in ``colour``, the rest in ``track``."""
    split = box.x0 + round(box.width * min(max(fraction, 0.0), 1.0))
    fill_panel(image, Box(box.x0, box.y0, split, box.y1), colour, 1.0)
    fill_panel(image, Box(split, box.y0, box.x1, box.y1), track, 1.0)
