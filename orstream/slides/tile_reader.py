"""Reading a tile grid's tiles as RGB arrays, in grid order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from orstream.slides.slide_file import Slide
from orstream.slides.tile_grid import TileGrid


def read_tiles(slide: Slide, grid: TileGrid) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Each tile's level-0 corner and its (tile, tile, 3) uint8 RGB pixels."""
    import cv2

    size = (grid.read_size, grid.read_size)
    for x, y in grid.corners:
        pixels = slide.read_region((int(x), int(y)), grid.level, size)
        if grid.read_size != grid.tile:
            pixels = cv2.resize(pixels, (grid.tile, grid.tile), interpolation=cv2.INTER_AREA)
        yield (int(x), int(y)), pixels
