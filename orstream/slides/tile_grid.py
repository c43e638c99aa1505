"""Where to cut tiles: a grid at a target magnification over the tissue only.

A tile of ``tile`` pixels at ``mpp`` µm per pixel covers ``tile * mpp / slide_mpp`` level-0
pixels. It is read from the coarsest level that is still at least as fine as the target (so
no detail is invented) and resized to ``tile`` pixels when that level's scale is not exact.
Tiles sit edge to edge from the slide's top-left corner; a tile is kept when it lies wholly
on the slide and the tissue mask covers at least ``min_tissue`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.errors import OrstreamError
from orstream.slides.slide_file import Slide
from orstream.slides.tissue_mask import TissueMask

UPSAMPLE_TOLERANCE = 1.1
"""How much finer than the slide's level 0 a target may be (scanners round their mpp)."""


@dataclass(frozen=True)
class TileGrid:
    """Tiles to read: level-0 top-left corners, and how to read each one."""

    mpp: float
    tile: int
    level: int
    read_size: int
    """Pixels read at ``level`` per tile side; resized to ``tile`` when different."""
    span: int
    """Level-0 pixels per tile side."""
    corners: np.ndarray
    """(N, 2) int64 level-0 (x, y), row by row."""

    def __len__(self) -> int:
        return len(self.corners)


def plan_tiles(
    slide: Slide,
    tissue: TissueMask,
    mpp: float = 0.5,
    tile: int = 224,
    min_tissue: float = 0.5,
    slide_mpp: float | None = None,
) -> TileGrid:
    """The tile grid of ``slide`` at ``mpp``; ``slide_mpp`` overrides (or stands in for) the
    slide's own level-0 µm per pixel."""
    if mpp <= 0 or tile < 1:
        raise OrstreamError(f"tiles need a positive mpp and size, not {mpp} µm/px, {tile} px")
    level0_mpp = slide_mpp or (slide.mpp[0] if slide.mpp else None)
    if level0_mpp is None:
        raise OrstreamError(
            f"{slide.path}: the slide does not say its microns per pixel; give it (--slide-mpp)"
        )
    factor = mpp / level0_mpp
    if factor * UPSAMPLE_TOLERANCE < 1:
        raise OrstreamError(
            f"{slide.path}: {mpp} µm/px is finer than the slide's level 0 ({level0_mpp:g} µm/px)"
        )
    span = max(round(tile * factor), 1)
    level = slide.best_level(factor)
    read_size = max(round(span / slide.levels[level].downsample), 1)
    width, height = slide.dimensions
    xs = np.arange(0, width - span + 1, span, dtype=np.int64)
    ys = np.arange(0, height - span + 1, span, dtype=np.int64)
    rows, columns = np.nonzero(tissue.coverage(xs, ys, span) >= min_tissue)
    return TileGrid(
        mpp=mpp,
        tile=tile,
        level=level,
        read_size=read_size,
        span=span,
        corners=np.stack([xs[columns], ys[rows]], axis=1).reshape(-1, 2),
    )
