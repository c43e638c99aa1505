"""The sender's waits: exponential from the first failure, capped, spread by the jitter so edges
that lost one server do not all come back in step."""

from __future__ import annotations

import random

import pytest

from orstream.edge.outbox.retry import RetryPolicy
from orstream.errors import OrstreamError


def test_waits_grow_to_the_cap_and_spread() -> None:
    steady = RetryPolicy(initial_s=1.0, factor=2.0, max_s=10.0, jitter=0.0)
    assert [steady.wait_s(n, random.Random(0)) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    spread = RetryPolicy(initial_s=1.0, factor=2.0, max_s=10.0, jitter=0.3)
    rng = random.Random(1)
    waits = [spread.wait_s(20, rng) for _ in range(200)]
    assert 7.0 <= min(waits) < 8.0 and 12.0 < max(waits) <= 13.0
    assert len({round(w, 3) for w in waits}) > 150


def test_nonsense_is_refused() -> None:
    for bad in ({"initial_s": 0}, {"factor": 0.5}, {"max_s": 0.1}, {"jitter": 1.0}):
        with pytest.raises(OrstreamError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
