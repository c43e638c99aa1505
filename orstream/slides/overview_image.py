"""A picture of what tiling will read: the thumbnail, its tissue tinted, and the tile grid."""

from __future__ import annotations

import numpy as np

from orstream.slides.tile_grid import TileGrid
from orstream.slides.tissue_mask import TissueMask

TISSUE_TINT = np.array([0, 170, 0], np.float32)
TILE_COLOUR = (0, 0, 255)


def draw_overview(tissue: TissueMask, grid: TileGrid | None) -> np.ndarray:
    """RGB: the thumbnail with tissue tinted green and each tile outlined in blue."""
    import cv2

    image = tissue.thumbnail.astype(np.float32)
    image[tissue.mask] = 0.65 * image[tissue.mask] + 0.35 * TISSUE_TINT
    overview = np.ascontiguousarray(image.astype(np.uint8))
    if grid is not None:
        sx, sy = tissue.scale
        for x, y in grid.corners:
            top_left = (int(x / sx), int(y / sy))
            bottom_right = (int((x + grid.span) / sx) - 1, int((y + grid.span) / sy) - 1)
            cv2.rectangle(overview, top_left, bottom_right, TILE_COLOUR, 1)
    return overview
