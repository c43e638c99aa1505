"""Which frames of a stream a model at a fixed rate sees."""

from __future__ import annotations

import math

from orstream.streams.frame import Frame

SAMPLE_SLACK_NS = 1_000_000
"""Slack for pts rounding: a frame 1 ms before the sample time still counts as that sample."""


class RateSampler:
    """Picks frames at ``rate_hz`` by source timestamp: sample k is the first frame at or after
    k / rate seconds from the stream's start (or its last discontinuity).

    Args:
        rate_hz: samples per second of source time.
    """

    def __init__(self, rate_hz: float) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate must be positive, not {rate_hz}")
        self.rate_hz = rate_hz
        self._first_pts: int | None = None
        self._next_sample = 0

    def take(self, frame: Frame) -> bool:
        """True when ``frame`` is the next sample."""
        if self._first_pts is None or frame.discontinuity:
            self._first_pts, self._next_sample = frame.pts_ns, 0
        elapsed_ns = frame.pts_ns - self._first_pts + SAMPLE_SLACK_NS
        sample = math.floor(elapsed_ns * self.rate_hz / 1e9)
        if sample < self._next_sample:
            return False
        self._next_sample = sample + 1
        return True
