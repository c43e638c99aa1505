"""Per-stage accounting: how long each item took and how many went through."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from orstream.latency import LatencySummary

WINDOW = 200_000
"""Latency samples kept per stage (about 2 hours of 24 fps video); older ones age out."""


class StageMeter:
    """Latency samples (ms) and an item count for one stage, safe across threads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.processed = 0
        self._samples: deque[float] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()

    def record(self, ms: float) -> None:
        with self._lock:
            self._samples.append(ms)
            self.processed += 1

    def record_since(self, start_ns: int) -> float:
        """Record the time from ``start_ns`` (``time.monotonic_ns()``) to now; returns it in ms."""
        ms = (time.monotonic_ns() - start_ns) / 1e6
        self.record(ms)
        return ms

    def summary(self) -> LatencySummary:
        with self._lock:
            samples = list(self._samples)
        return LatencySummary.of(samples)

    def samples(self) -> list[float]:
        """The latency samples kept, oldest first."""
        with self._lock:
            return list(self._samples)

    @staticmethod
    def merged(meters: Sequence[StageMeter]) -> LatencySummary:
        """Percentiles over the samples of several meters together."""
        return LatencySummary.of([ms for meter in meters for ms in meter.samples()])


class RateMeter:
    """Events per second over a sliding window of recent events."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window_ns = int(window_s * 1e9)
        self._times: deque[int] = deque()
        self._lock = threading.Lock()

    def tick(self, now_ns: int | None = None) -> None:
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self._window_ns:
                self._times.popleft()

    def rate(self) -> float:
        now = time.monotonic_ns()
        with self._lock:
            while self._times and now - self._times[0] > self._window_ns:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            return (len(self._times) - 1) * 1e9 / max(1, self._times[-1] - self._times[0])
