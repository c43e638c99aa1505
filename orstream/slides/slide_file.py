"""Opening a whole slide with OpenSlide, with every failure reported as one line naming it.

OpenSlide opens Aperio SVS, generic tiled TIFF, Hamamatsu, MIRAX, Leica, Philips and more.
Some broken files open and fail only on the first read, so reads are wrapped too: the caller
gets an :class:`~orstream.errors.OrstreamError` with the file's name either way. Regions come
back as RGB uint8 arrays with transparent (unscanned) areas filled with the slide's background
colour.
"""

from __future__ import annotations

import ctypes
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from orstream.errors import OrstreamError

_PIXELS = ctypes.POINTER(ctypes.c_uint32)
MIN_BAND_ROWS = 256
"""Levels shorter than this many rows per band are read in one piece (threads would not pay)."""


@dataclass(frozen=True)
class SlideLevel:
    """One pyramid level: its size in pixels and its downsample from level 0."""

    width: int
    height: int
    downsample: float


class Slide:
    """An open slide; use :func:`open_slide`, ideally as a context manager."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self._handle = handle
        self.levels = tuple(
            SlideLevel(int(w), int(h), float(d))
            for (w, h), d in zip(handle.level_dimensions, handle.level_downsamples, strict=True)
        )
        properties = handle.properties
        self.vendor = str(properties.get("openslide.vendor", "unknown"))
        self.mpp = _mpp(properties)
        colour = str(properties.get("openslide.background-color", "FFFFFF"))
        self.background = np.array([int(colour[i : i + 2], 16) for i in (0, 2, 4)], np.uint8)

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level 0's (width, height)."""
        return self.levels[0].width, self.levels[0].height

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample is at most ``downsample`` (level 0 if none)."""
        fitting = [i for i, level in enumerate(self.levels) if level.downsample <= downsample]
        return fitting[-1] if fitting else 0

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> np.ndarray:
        """RGB pixels of ``size`` (width, height) at ``level`` whose top-left corner is
        ``location`` in level-0 pixels."""
        import cv2
        from openslide import lowlevel

        # OpenSlide's own call, straight into an array: openslide-python's read_region would
        # reorder the channels into a PIL image, which NumPy then copies again, two passes over
        # every pixel that cost a fifth of the read. ctypes releases the GIL meanwhile.
        width, height = size
        pixels = np.empty((height, width), np.uint32)
        try:
            lowlevel._read_region(
                self._handle._osr, pixels.ctypes.data_as(_PIXELS), *location, level, *size
            )
        except Exception as error:  # OpenSlideError and decoder errors alike
            raise OrstreamError(f"{self.path}: cannot read the slide's pixels: {error}") from error
        if width * height == 0:
            return np.zeros((height, width, 3), np.uint8)
        if sys.byteorder == "big":
            pixels.byteswap(inplace=True)
        # Premultiplied ARGB words, as bytes B, G, R, A.
        bgra = pixels.view(np.uint8).reshape(height, width, 4)
        # Wholly scanned, as nearly every region is: no blending. OpenCV's channel copies are
        # a tenth of NumPy's strided ones, which cost as much as a tile's encoding.
        if cv2.minMaxLoc(cv2.extractChannel(bgra, 3))[0] == 255:
            return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
        # Premultiplied colour over the background: colour + background x (1 - alpha).
        alpha = bgra[..., 3:4].astype(np.uint16)
        rgb = bgra[..., 2::-1].astype(np.uint16)
        blended = rgb + (self.background * (255 - alpha) + 127) // 255
        return np.minimum(blended, 255).astype(np.uint8)

    def read_level(self, level: int, bands: int = 2) -> np.ndarray:
        """The whole of ``level`` as RGB (meant for small levels: thumbnails).

        OpenSlide decodes on the calling thread and ctypes lets go of the GIL, so the level is
        read as ``bands`` horizontal bands on as many threads (the 3,125 px level a 100,000 px
        phantom's thumbnail comes from: median 194 ms in one read, 114 ms in two, 2 cores). Only
        where the level's downsample is a whole number: each band then starts on the level-0 row its
        first row maps to exactly, and the pixels are those of one read; elsewhere, one read.
        """
        info = self.levels[level]
        whole = info.downsample == round(info.downsample)
        if bands <= 1 or not whole or info.height < bands * MIN_BAND_ROWS:
            return self.read_region((0, 0), level, (info.width, info.height))
        step = round(info.downsample)
        edges = np.linspace(0, info.height, bands + 1).round().astype(int)
        out = np.empty((info.height, info.width, 3), np.uint8)

        def read(band: int) -> None:
            top, bottom = int(edges[band]), int(edges[band + 1])
            out[top:bottom] = self.read_region((0, top * step), level, (info.width, bottom - top))

        with ThreadPoolExecutor(bands, thread_name_prefix="slide-band") as pool:
            for done in [pool.submit(read, band) for band in range(bands)]:
                done.result()
        return out

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_slide(path: Path) -> Slide:
    """Open ``path`` with OpenSlide; a missing, unsupported or broken file raises
    :class:`OrstreamError` naming it."""
    if not path.is_file():
        raise OrstreamError(f"{path}: no such slide file")
    try:
        import openslide
    except ImportError as error:
        raise OrstreamError(
            "reading slides needs openslide-python and openslide-bin "
            "(pip install 'orstream[server]')"
        ) from error
    try:
        handle = openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError as error:
        raise OrstreamError(f"{path}: not a slide format OpenSlide reads") from error
    except (openslide.OpenSlideError, OSError) as error:
        raise OrstreamError(f"{path}: OpenSlide cannot open it: {error}") from error
    return Slide(path, handle)


def _mpp(properties: Any) -> tuple[float, float] | None:
    """Microns per level-0 pixel (x, y), or None when the slide does not say."""
    try:
        return float(properties["openslide.mpp-x"]), float(properties["openslide.mpp-y"])
    except (KeyError, ValueError):
        return None
