"""Frames from memory, delivered live: a camera for benches that costs nothing to decode.

A :class:`ReplaySource` hands out frames held in memory at a fixed rate, as a live camera would:
frame ``i`` is released no earlier than ``i / fps`` seconds after the first, and when the
consumer falls more than a frame behind, the frames whose time has passed are skipped (counted
in ``dropped``), never queued. Benches use it to measure models and the runtime on many
streams without measuring a video decoder too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame


class ReplaySource:
    """``frames`` in a loop, live, for ``seconds``.

    Args:
        frames: RGB uint8 images (all the same size); frame ``i`` shows ``frames[i % len]``.
        fps: frames per second.
        seconds: how long the stream lasts.
        stream_id: the ``stream_id`` of every frame.
        start_offset: index into ``frames`` of the first frame (streams of one bench show
            different pictures at once).
    """

    live = True

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        fps: float,
        seconds: float,
        stream_id: str = "replay",
        start_offset: int = 0,
    ) -> None:
        if not len(frames) or fps <= 0 or seconds <= 0:
            raise OrstreamError("a replay needs frames, a positive rate and a positive length")
        self.images = frames
        self.fps = fps
        self.frame_count = round(seconds * fps)
        self.stream_id = stream_id
        self.start_offset = start_offset
        self.uri = f"replay://{stream_id}?frames={len(frames)}&fps={fps:g}&seconds={seconds:g}"
        self.dropped = 0
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        start_ns = time.monotonic_ns()
        index = 0
        while index < self.frame_count and not self._closed.is_set():
            due_ns = start_ns + round(index * 1e9 / self.fps)
            wait_s = (due_ns - time.monotonic_ns()) / 1e9
            if wait_s > 0:
                self._closed.wait(wait_s)
            else:
                behind = int(-wait_s * self.fps)
                if behind >= 1:  # a live camera does not wait: skip what is past
                    skipped = min(behind, self.frame_count - index - 1)
                    self.dropped += skipped
                    index += skipped
            if self._closed.is_set():
                return
            image = self.images[(index + self.start_offset) % len(self.images)]
            pts_ns = round(index * 1e9 / self.fps)
            yield Frame(image, pts_ns, time.monotonic_ns(), index, self.stream_id)
            index += 1

    def close(self) -> None:
        self._closed.set()
