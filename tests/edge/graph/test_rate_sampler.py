"""Models at a fixed rate see the first frame at or after each sample time."""

import numpy as np
import pytest

from orstream.edge.graph.rate_sampler import RateSampler
from orstream.streams.frame import Frame

IMAGE = np.zeros((2, 2, 3), np.uint8)


def frame(index: int, pts_ns: int, discontinuity: bool = False) -> Frame:
    return Frame(IMAGE, pts_ns, 0, index, "cam0", discontinuity)


def taken(sampler: RateSampler, frames: list[Frame]) -> list[int]:
    return [f.index for f in frames if sampler.take(f)]


def test_samples_at_the_rate_from_the_first_frame() -> None:
    # 30 fps with pts rounded down to whole milliseconds, as containers store them.
    frames = [frame(i, (i * 1000 // 30) * 1_000_000 + 5_000_000_000) for i in range(91)]
    assert taken(RateSampler(2.0), frames) == [0, 15, 30, 45, 60, 75, 90]
    assert taken(RateSampler(30.0), frames) == list(range(91))


def test_a_gap_gives_one_sample_not_a_burst() -> None:
    frames = [frame(0, 0), frame(1, 100_000_000), frame(2, 3_000_000_000), frame(3, 3_100_000_000)]
    assert taken(RateSampler(1.0), frames) == [0, 2]


def test_a_discontinuity_restarts_the_clock() -> None:
    frames = [frame(0, 0), frame(1, 600_000_000), frame(2, 50_000_000, discontinuity=True)]
    assert taken(RateSampler(1.0), frames) == [0, 2]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateSampler(0.0)
