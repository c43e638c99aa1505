"""The clips kept for search: bounded by the stream's time, best moments first, each once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from orstream.edge.models.clip_memory import ClipMemory, KeptClip

S = 1_000_000_000


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def clip(second: int, *values: float) -> KeptClip:
    return KeptClip(second, second * S, max(0, second - 9) * S, unit(*values))


def test_only_the_last_keep_s_seconds_are_kept() -> None:
    memory = ClipMemory(keep_s=10)
    for second in range(30):
        memory.add(clip(second, 1, 0))
    assert len(memory) == 11  # seconds 19..29
    moments, searched = memory.search(unit(1, 0), seconds=0, limit=100, apart_ns=0)
    assert searched == 11 and min(m.pts_ns for m in moments) == 19 * S


def test_a_stream_that_goes_back_in_time_starts_over() -> None:
    memory = ClipMemory(keep_s=100)
    for second in range(5):
        memory.add(clip(second, 1, 0))
    memory.add(clip(2, 0, 1))  # seeked back
    assert len(memory) == 1


def test_moments_come_best_first_each_once_within_the_window() -> None:
    memory = ClipMemory(keep_s=600)
    # A moment that matches around 20 s (three overlapping clips) and a weaker one at 100 s.
    angles = {19: 0.2, 20: 0.05, 21: 0.15, 100: 0.5}
    for second in range(0, 121):
        angle = angles.get(second, 1.4)
        memory.add(clip(second, np.cos(angle), np.sin(angle)))
    moments, searched = memory.search(unit(1, 0), seconds=0, limit=3, apart_ns=10 * S)
    assert searched == 121
    assert [m.pts_ns // S for m in moments[:2]] == [20, 100]  # 19 and 21 are the same moment
    assert moments[0].score == pytest.approx(np.cos(0.05), abs=1e-6)
    assert moments[0].start_pts_ns == 11 * S
    assert all(a.score >= b.score for a, b in itertools.pairwise(moments))
    recent, searched = memory.search(unit(1, 0), seconds=30, limit=3, apart_ns=10 * S)
    assert searched == 31 and recent[0].pts_ns == 100 * S  # 20 s is beyond the last 30 s
    assert memory.search(unit(1, 0), seconds=0, limit=1, apart_ns=0)[0][0].pts_ns == 20 * S
    assert ClipMemory(60).search(unit(1, 0), 0, 5, 0) == ([], 0)
