"""A stream's overlay video as a WebRTC track: each browser reads the newest frame of the
stream's slot, so a browser (or network) too slow for every frame gets fewer frames, later
ones, and never holds up the video path or the other viewers."""

from __future__ import annotations

import fractions

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from orstream.edge.web.frame_slot import FrameSlot

CLOCK_RATE = 90_000
"""RTP's video clock: timestamps count 1/90000 s."""
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)


class OverlayTrack(MediaStreamTrack):
    """The frames of one slot as they come, stamped with their capture times (so the browser
    plays them at the pace they were captured, not the pace they were read)."""

    kind = "video"

    def __init__(self, slot: FrameSlot) -> None:
        super().__init__()
        self._slot = slot
        self._seen = 0
        self._first_ns: int | None = None

    async def recv(self) -> av.VideoFrame:
        self._seen, frame = await self._slot.newer_than(self._seen)
        if self._first_ns is None:
            self._first_ns = frame.capture_ns
        image = np.ascontiguousarray(np.asarray(frame.image))
        height, width = image.shape[:2]
        if width % 2 or height % 2:  # 4:2:0 video has even sides
            image = np.ascontiguousarray(image[: height - height % 2, : width - width % 2])
        video = av.VideoFrame.from_ndarray(image, format="rgb24")
        video.pts = (frame.capture_ns - self._first_ns) * CLOCK_RATE // 1_000_000_000
        video.time_base = TIME_BASE
        return video
