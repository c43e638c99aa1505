"""Reading a tile grid's tiles as RGB arrays, in grid order.

Tiles that sit side by side in a grid row are read as one strip: one ``read_region`` call
decodes the slide's JPEG tiles under the strip once and pays OpenSlide's per-call cost (the
region buffer, its colour conversion, the alpha check) once instead of once per tile.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from orstream.slides.slide_file import Slide
from orstream.slides.tile_grid import TileGrid

MAX_STRIP = 16
"""Most tiles read in one call: strips stay a few hundred kB whatever the row's length."""


def read_batch(slide: Slide, grid: TileGrid, corners: np.ndarray) -> np.ndarray:
    """The tiles at level-0 ``corners`` (rows of ``grid.corners``), [n, tile, tile, 3] uint8,
    each row's neighbours read as strips of up to :data:`MAX_STRIP` tiles."""
    tiles = np.empty((len(corners), grid.tile, grid.tile, 3), np.uint8)
    size = grid.read_size
    start = 0
    while start < len(corners):
        stop = start + 1
        while (
            stop < len(corners)
            and stop - start < MAX_STRIP
            and corners[stop, 1] == corners[start, 1]
            and corners[stop, 0] == corners[stop - 1, 0] + grid.span
        ):
            stop += 1
        x, y = int(corners[start, 0]), int(corners[start, 1])
        strip = slide.read_region((x, y), grid.level, (size * (stop - start), size))
        for index in range(stop - start):
            pixels = strip[:, index * size : (index + 1) * size]
            tiles[start + index] = pixels if size == grid.tile else _resize(pixels, grid.tile)
        start = stop
    return tiles


def read_tiles(slide: Slide, grid: TileGrid) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Each tile's level-0 corner and its (tile, tile, 3) uint8 RGB pixels, read in strips."""
    for start in range(0, len(grid), MAX_STRIP):
        corners = grid.corners[start : start + MAX_STRIP]
        for (x, y), pixels in zip(corners, read_batch(slide, grid, corners), strict=True):
            yield (int(x), int(y)), pixels


def _resize(pixels: np.ndarray, tile: int) -> np.ndarray:
    import cv2

    return cv2.resize(pixels, (tile, tile), interpolation=cv2.INTER_AREA)
