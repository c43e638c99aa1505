"""Finding tissue on a slide's thumbnail, as CLAM does.

Stained tissue is coloured and glass is grey or white, so saturation separates them: the
thumbnail's HSV saturation is median-blurred (removing speckle and JPEG noise), thresholded
with Otsu's method (never below a floor, so a blank slide does not split its noise in two),
closed morphologically (joining tissue torn by small gaps), and regions or holes smaller than a
minimum area are dropped (dust, bubbles, pen specks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.slides.slide_file import Slide

MIN_SATURATION = 15
"""Otsu's threshold is raised to this: the glass of a blank slide stays background."""
MEDIAN_KERNEL = 7
CLOSING_KERNEL = 4
MIN_AREA_PX0 = 256 * 256
"""Smallest tissue region or hole kept, in level-0 pixels (128 x 128 µm at 0.5 µm/px)."""
MAX_AREA_SHARE = 0.01
"""...and never more than this share of the slide."""
THUMBNAIL_SIDES = (512, 2048)
"""The thumbnail's longer side: level 0 / 32, kept within these bounds."""


@dataclass(frozen=True)
class TissueMask:
    """Tissue on a thumbnail: ``mask`` is True on tissue; ``scale`` is level-0 pixels per
    thumbnail pixel (x, y)."""

    thumbnail: np.ndarray
    mask: np.ndarray
    scale: tuple[float, float]

    @property
    def fraction(self) -> float:
        """Share of the slide covered by tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def coverage(self, xs: np.ndarray, ys: np.ndarray, span: int) -> np.ndarray:
        """Share of tissue in each level-0 square of side ``span`` whose corners are the grid
        of columns ``xs`` by rows ``ys``: [len(ys), len(xs)], from one summed-area table of
        the mask instead of a mean per square (a 100,000 px slide has 10^5 squares). OpenCV's
        integral image and gathering its rows first take 0.15 ms on a 20,000 px slide's
        625 px mask, where NumPy's cumulative sums and 2-D fancy indexing took 7.9 ms (a
        thirtieth of reading its 899 tiles)."""
        import cv2

        sx, sy = self.scale
        height, width = self.mask.shape
        table = cv2.integral(self.mask.astype(np.uint8), sdepth=cv2.CV_32S)
        x0 = np.minimum((xs / sx).astype(np.int64), width)
        y0 = np.minimum((ys / sy).astype(np.int64), height)
        x1 = np.minimum(np.maximum(np.ceil((xs + span) / sx).astype(np.int64), x0 + 1), width)
        y1 = np.minimum(np.maximum(np.ceil((ys + span) / sy).astype(np.int64), y0 + 1), height)
        top, bottom = table[y0], table[y1]
        inside = bottom[:, x1] - bottom[:, x0] - top[:, x1] + top[:, x0]
        area = (y1 - y0)[:, None] * (x1 - x0)[None, :]
        return np.where(area > 0, inside / np.maximum(area, 1), 0.0)


def thumbnail(slide: Slide) -> tuple[np.ndarray, tuple[float, float]]:
    """An RGB thumbnail about 1/32 of level 0 and its scale (level-0 pixels per pixel)."""
    import cv2

    width, height = slide.dimensions
    low, high = THUMBNAIL_SIDES
    side = min(max(max(width, height) / 32, low), high, max(width, height))
    downsample = max(width, height) / side
    image = slide.read_level(slide.best_level(downsample))
    size = (max(round(width / downsample), 1), max(round(height / downsample), 1))
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, (width / size[0], height / size[1])


def detect_tissue(slide: Slide, min_area_px0: int = MIN_AREA_PX0) -> TissueMask:
    """The slide's tissue mask on its thumbnail."""
    import cv2

    image, scale = thumbnail(slide)
    saturation = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1]
    blurred = cv2.medianBlur(saturation, MEDIAN_KERNEL)
    otsu, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    found = (blurred > max(otsu, MIN_SATURATION)).astype(np.uint8)
    kernel = np.ones((CLOSING_KERNEL, CLOSING_KERNEL), np.uint8)
    mask = cv2.morphologyEx(found, cv2.MORPH_CLOSE, kernel)
    # On a small slide (a cropped region), a fixed area could exceed all of its tissue.
    min_area = min(min_area_px0 / (scale[0] * scale[1]), MAX_AREA_SHARE * mask.size)
    kept = _drop_small(mask, min_area)
    glass = _drop_small(1 - kept, min_area, keep_border=True)
    return TissueMask(image, glass == 0, scale)


def _drop_small(mask: np.ndarray, min_area: float, keep_border: bool = False) -> np.ndarray:
    """``mask`` without its 8-connected regions smaller than ``min_area`` pixels; with
    ``keep_border``, regions touching the image's edge stay whatever their size (glass around
    the tissue is not a hole)."""
    import cv2

    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    if keep_border:
        keep[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    keep[0] = False
    return keep[labels].astype(np.uint8)
