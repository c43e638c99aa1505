"""Writes a pyramidal tiled JPEG TIFF tile by tile, never holding a whole level in memory.

Level 0 comes from a tile renderer, one row of tiles at a time; each row, halved, is appended
to a raw scratch file for the next level, which is then written from there, and so on: memory
holds one row of tiles, whatever the slide's size (plain file writes, not memory maps, so the
scratch levels never count as the process's memory). Each level halves the one before until the
larger side is at most ``SMALLEST_SIDE`` pixels. The resolution tags carry microns per pixel,
which OpenSlide reports as ``openslide.mpp-x`` / ``openslide.mpp-y``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

TILE = 512
SMALLEST_SIDE = 512
JPEG_QUALITY = 85

TileRenderer = Callable[[int, int, int], np.ndarray]
"""(x0, y0, size) -> (size, size, 3) uint8 RGB level-0 tile."""
RowProgress = Callable[[int, int, int], None]
"""(level, rows done, rows in level)."""


def level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(width, height) of each level, each half the one before."""
    sizes = [(width, height)]
    while max(sizes[-1]) > SMALLEST_SIDE:
        w, h = sizes[-1]
        sizes.append(((w + 1) // 2, (h + 1) // 2))
    return sizes


def write_pyramid(
    path: Path,
    width: int,
    height: int,
    mpp: float,
    render: TileRenderer,
    description: str,
    progress: RowProgress,
) -> None:
    """Write the slide ``render`` draws as a pyramidal TIFF at ``path``."""
    import tifffile

    sizes = level_sizes(width, height)
    with (
        tempfile.TemporaryDirectory(dir=path.parent, prefix=".pyramid-") as scratch,
        tifffile.TiffWriter(path, bigtiff=width * height > 2**29) as tiff,
    ):
        below = [
            _ScratchLevel(Path(scratch) / f"level{k}.raw", w, h)
            for k, (w, h) in enumerate(sizes)
            if k > 0
        ]
        for level, (w, h) in enumerate(sizes):
            halved = below[level] if level < len(below) else None
            strips = _rendered_strips(render, w, h) if level == 0 else below[level - 1].strips()
            tiles = _tiles(strips, w, h, halved, partial(progress, level))
            downsample = 2**level
            tiff.write(
                tiles,
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": JPEG_QUALITY},
                resolution=(1e4 / (mpp * downsample), 1e4 / (mpp * downsample)),
                resolutionunit="CENTIMETER",
                subfiletype=0 if level == 0 else 1,
                description=description if level == 0 else None,
                metadata=None,
            )


def _rendered_strips(render: TileRenderer, width: int, height: int) -> Iterator[np.ndarray]:
    columns = -(-width // TILE) * TILE
    for y0 in range(0, height, TILE):
        strip = np.empty((TILE, columns, 3), np.uint8)  # filled in place: no list of its tiles
        for x0 in range(0, width, TILE):
            strip[:, x0 : x0 + TILE] = render(x0, y0, TILE)
        yield strip
        del strip  # before the next one is allocated


class _ScratchLevel:
    """A level kept on disk as raw RGB rows: appended in order, read back a strip at a time."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path, self.width, self.height = path, width, height
        self.rows = 0
        path.touch()

    def append(self, rows: np.ndarray) -> None:
        kept = rows[: self.height - self.rows]
        with self.path.open("ab") as handle:
            handle.write(np.ascontiguousarray(kept).tobytes())
        self.rows += len(kept)

    def strips(self) -> Iterator[np.ndarray]:
        """The level in strips of ``TILE`` rows, padded with black to whole tiles."""
        columns = -(-self.width // TILE) * TILE
        row_bytes = self.width * 3
        with self.path.open("rb") as handle:
            for y0 in range(0, self.height, TILE):
                count = min(TILE, self.height - y0)
                part = np.frombuffer(handle.read(count * row_bytes), np.uint8)
                strip = np.zeros((TILE, columns, 3), np.uint8)
                strip[:count, : self.width] = part.reshape(count, self.width, 3)
                yield strip


def _tiles(
    strips: Iterator[np.ndarray],
    width: int,
    height: int,
    halved: _ScratchLevel | None,
    done: Callable[[int, int], None],
) -> Iterator[np.ndarray]:
    """The tiles of each strip in order, each strip's valid part first halved into
    ``halved`` (the next level). Halving comes before the strip's tiles are handed out: the
    TIFF writer stops asking once it has the level's last tile, so nothing after it runs."""
    for row, strip in enumerate(strips):
        if halved is not None:
            halved.append(_halve(strip[: min(TILE, height - row * TILE), :width]))
        done(row + 1, height)
        for x0 in range(0, strip.shape[1], TILE):
            # A copy, not a view: the writer holds its last tile while the next strip is
            # made, and a view would keep this whole strip alive beside it.
            yield strip[:, x0 : x0 + TILE].copy()
        del strip


def _halve(image: np.ndarray) -> np.ndarray:
    """2 x 2 box average, the odd last row or column repeated."""
    import cv2

    h, w = image.shape[:2]
    # An even image is read in place (OpenCV takes the strided view): no copy of the strip.
    padded = (
        np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else image
    )
    return cv2.resize(
        padded, (padded.shape[1] // 2, padded.shape[0] // 2), interpolation=cv2.INTER_AREA
    )
