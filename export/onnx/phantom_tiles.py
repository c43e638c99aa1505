"""Phantom slide tiles for the slide package's parity checks and golden reference.

Tiles are rendered straight from a phantom slide's plan (no TIFF is written): a slide with
tumour, stroma and often necrosis and fat, at level-0 0.5 µm per pixel, each tile cut at the
package's magnification and resized to its tile side as slide reading does (area
interpolation). They are spread evenly over the slide's tissue, so a handful already shows
several tissue classes.
"""

from __future__ import annotations

import numpy as np

from orstream.slides.phantom.dataset_writer import PHANTOM_MPP
from orstream.slides.phantom.slide_plan import plan_slide
from orstream.slides.phantom.tile_texture import render_tile

PLAN_SEED = 3
PLAN_SIZE = 8192
PLAN_SUBTYPE = "solid"


def phantom_tiles(count: int, mpp: float, tile: int) -> np.ndarray:
    """``count`` RGB uint8 tiles [count, tile, tile, 3] of tissue at ``mpp`` µm per pixel."""
    import cv2

    plan = plan_slide("reference", PLAN_SIZE, PHANTOM_MPP, PLAN_SUBTYPE, PLAN_SEED)
    span = max(round(tile * mpp / PHANTOM_MPP), 1)
    cells = np.argwhere(plan.region_mask() > 0)
    picks = cells[np.linspace(0, len(cells) - 1, count).round().astype(int)]
    tiles = []
    for row, column in picks:
        x = min(int(column) * plan.mask_downsample, PLAN_SIZE - span)
        y = min(int(row) * plan.mask_downsample, PLAN_SIZE - span)
        pixels = render_tile(plan, x, y, span)
        if span != tile:
            pixels = cv2.resize(pixels, (tile, tile), interpolation=cv2.INTER_AREA)
        tiles.append(pixels)
    return np.stack(tiles)
