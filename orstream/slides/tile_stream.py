"""Tiles read ahead on reader threads, in batches, while the caller encodes earlier batches.

Reading a slide's tiles and encoding them are the two costs of an analysis (on CPU, encoding a
tile with the shipped package costs about half of reading it), so reading must not wait for
inference nor inference for reading. Reader threads each read a whole batch of tiles
(OpenSlide reads one slide from several threads at once, and releases the GIL while it
decodes and composites) and do nothing else: reading is the slower half, so the encoder's own
preparation of a batch stays on the inference thread. At most ``depth`` batches
are read or waiting at any time, so memory holds a few batches of tiles whatever the slide's
size, never a level of it. Batches come out in grid order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import numpy as np

from orstream.slides.slide_file import Slide
from orstream.slides.tile_grid import TileGrid
from orstream.slides.tile_reader import read_batch


def stream_batches(
    slide: Slide,
    grid: TileGrid,
    batch: int,
    readers: int,
    depth: int | None = None,
) -> Iterator[np.ndarray]:
    """The grid's tiles as RGB uint8 batches [b, tile, tile, 3] of ``batch`` tiles (the last
    may be shorter), read by ``readers`` threads with at most ``depth`` batches in flight
    (default ``readers + 1``: one to hand over while each reader reads the next).

    Raises:
        OrstreamError: a tile cannot be read (at the batch that holds it).
    """
    depth = max(depth or readers + 1, 1)
    starts = iter(range(0, len(grid), batch))

    def read(start: int) -> np.ndarray:
        return read_batch(slide, grid, grid.corners[start : start + batch])

    with ThreadPoolExecutor(max(readers, 1), thread_name_prefix="tile-reader") as pool:
        pending: deque[Future[np.ndarray]] = deque()
        try:
            pending.extend(pool.submit(read, start) for start in islice(starts, depth))
            while pending:
                tiles = pending.popleft().result()
                following = next(starts, None)
                if following is not None:
                    pending.append(pool.submit(read, following))
                yield tiles
        finally:
            for future in pending:
                future.cancel()
