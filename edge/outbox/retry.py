"""How long the sender waits before trying an item again: exponential backoff with jitter,
capped, so an outage of any length is waited out without hammering the server when it returns
(every edge of a hospital retrying in step would)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from orstream.errors import OrstreamError


@dataclass(frozen=True)
class RetryPolicy:
    """Waits of ``initial_s`` x ``factor``^n, never above ``max_s``, each spread by up to
    ``jitter`` of itself either way. Sending never gives up: an item waits for the server
    however long it is away."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.3

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise OrstreamError("retry needs initial_s > 0, factor >= 1 and max_s >= initial_s")
        if not 0 <= self.jitter < 1:
            raise OrstreamError("retry needs 0 <= jitter < 1")

    def wait_s(self, failures: int, rng: random.Random) -> float:
        """The wait after ``failures`` failed tries in a row (1: the first failure)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1))
        return base * (1 + self.jitter * rng.uniform(-1, 1))
