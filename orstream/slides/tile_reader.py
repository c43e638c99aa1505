"""Reading a tile grid's tiles as RGB arrays, in grid order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from orstream.slides.slide_file import Slide
from orstream.slides.tile_grid import TileGrid


def read_tile(slide: Slide, grid: TileGrid, x: int, y: int) -> np.ndarray:
    """The (tile, tile, 3) uint8 RGB pixels of the tile whose level-0 corner is (x, y)."""
    import cv2

    pixels = slide.read_region((x, y), grid.level, (grid.read_size, grid.read_size))
    if grid.read_size != grid.tile:
        pixels = cv2.resize(pixels, (grid.tile, grid.tile), interpolation=cv2.INTER_AREA)
    return pixels


def read_tiles(slide: Slide, grid: TileGrid) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Each tile's level-0 corner and its (tile, tile, 3) uint8 RGB pixels."""
    for x, y in grid.corners:
        yield (int(x), int(y)), read_tile(slide, grid, int(x), int(y))
