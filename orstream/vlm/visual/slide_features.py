"""Visual tokens of a slide: the slide package's tile features, averaged over regions.

SlideChat feeds its language model the patch encoder's features of every tile; on 2 CPU cores a
slide's thousands of tiles are too many tokens, so the tiles' features are averaged over a
``grid`` of equal regions of the slide, one token per region (a region without tissue is all
zeros). The regions keep where tumour lies, which the ``region`` questions ask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orstream.slides.slide_file import open_slide
from orstream.slides.slide_models import SlideModels
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_stream import stream_batches
from orstream.slides.tissue_mask import detect_tissue

DEFAULT_REGIONS = (4, 4)


def slide_region_features(
    path: Path,
    models: SlideModels,
    regions: tuple[int, int] = DEFAULT_REGIONS,
    batch: int = 16,
) -> np.ndarray:
    """Features [rows*cols, F] of the slide at ``path``: the mean tile feature of each region,
    regions row by row.

    Raises:
        OrstreamError: the slide cannot be opened or read.
    """
    spec = models.spec
    with open_slide(path) as slide:
        width, height = slide.dimensions
        grid = plan_tiles(slide, detect_tissue(slide), spec.mpp, spec.tile, spec.min_tissue)
        features = np.zeros((len(grid), spec.inputs[0].shape[2]), np.float32)
        done = 0
        for tiles in stream_batches(slide, grid, batch, 1):
            features[done : done + len(tiles)] = models.encode(tiles)
            done += len(tiles)
    centres = grid.corners + grid.span / 2
    row = np.minimum((centres[:, 1] * regions[0] / height).astype(int), regions[0] - 1)
    column = np.minimum((centres[:, 0] * regions[1] / width).astype(int), regions[1] - 1)
    cell = row * regions[1] + column
    tokens = np.zeros((regions[0] * regions[1], features.shape[1]), np.float32)
    for index in range(len(tokens)):
        inside = features[cell == index]
        if len(inside):
            tokens[index] = inside.mean(axis=0)
    return tokens
