"""A sink that keeps frames in a list: for tests and for inspecting what a pipeline produced."""

from __future__ import annotations

import threading
from dataclasses import replace

from orstream.streams.frame import Frame


class MemorySink:
    """Keeps every written frame, in order, in :attr:`frames`.

    Args:
        keep_images: keep the images too; otherwise frames are kept with ``image=None`` (their
            timestamps and indices only), so long runs use little memory.

    Attributes:
        frames: the frames written so far.
        closed: whether :meth:`close` was called.
    """

    name = "memory"

    def __init__(self, keep_images: bool = True) -> None:
        self.keep_images = keep_images
        self.frames: list[Frame] = []
        self.closed = False
        self._lock = threading.Lock()

    def write(self, frame: Frame) -> None:
        """Keep one frame (ignored once closed)."""
        kept = frame if self.keep_images else replace(frame, image=None)
        with self._lock:
            if not self.closed:
                self.frames.append(kept)

    def close(self) -> None:
        """Take no more frames."""
        with self._lock:
            self.closed = True
