"""The tumour heatmap: each tile's tumour probability drawn over the slide's thumbnail."""

from __future__ import annotations

import numpy as np

from orstream.slides.tile_grid import TileGrid
from orstream.slides.tissue_mask import TissueMask

OPACITY = 0.55
"""How much of the colour a tile's probability paints over the thumbnail."""


def tile_score_map(tissue: TissueMask, grid: TileGrid, scores: np.ndarray) -> np.ndarray:
    """Float32 on the thumbnail's pixels: each tile's score where it lies, NaN off the tiles."""
    height, width = tissue.mask.shape
    heat = np.full((height, width), np.nan, np.float32)
    sx, sy = tissue.scale
    for (x, y), score in zip(grid.corners, scores, strict=True):
        x0, y0 = int(x / sx), int(y / sy)
        x1 = max(round((x + grid.span) / sx), x0 + 1)
        y1 = max(round((y + grid.span) / sy), y0 + 1)
        heat[y0:y1, x0:x1] = score
    return heat


def draw_heatmap(tissue: TissueMask, grid: TileGrid, scores: np.ndarray) -> np.ndarray:
    """RGB uint8: the thumbnail with every tile tinted from blue (0) through green to red (1)
    by its tumour probability; glass and tissue without tiles keep the thumbnail's colours."""
    import cv2

    image = tissue.thumbnail.copy()
    if len(grid) == 0:
        return image
    heat = tile_score_map(tissue, grid, scores)
    painted = ~np.isnan(heat)
    levels = np.clip(np.nan_to_num(heat) * 255, 0, 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = (1 - OPACITY) * image[painted] + OPACITY * colours[painted]
    image[painted] = blended.round().astype(np.uint8)
    return image


def encode_png(image: np.ndarray, max_side: int | None = None) -> bytes:
    """``image`` (RGB uint8) as PNG bytes, shrunk to ``max_side`` pixels on its longer side
    when given and larger."""
    import cv2

    if max_side is not None and max(image.shape[:2]) > max_side:
        factor = max_side / max(image.shape[:2])
        size = (max(round(image.shape[1] * factor), 1), max(round(image.shape[0] * factor), 1))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(data)
