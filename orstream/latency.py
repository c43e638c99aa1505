"""Latency percentiles as orstream reports them everywhere: p50, p99, p99.9 and max, in ms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a set of latencies in milliseconds (NaN when there were none)."""

    count: int
    p50: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float] | np.ndarray) -> LatencySummary:
        if len(samples_ms) == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p99, p999 = np.percentile(values, [50, 99, 99.9])
        return cls(len(values), float(p50), float(p99), float(p999), float(values.max()))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def describe(self) -> str:
        if self.count == 0:
            return "none measured yet (n=0)"
        return (
            f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms, p99.9 {self.p999:.1f} ms, "
            f"max {self.max:.1f} ms (n={self.count})"
        )
