"""A replay from memory behaves as a live camera: paced, looping its frames, skipping what the
consumer was too slow for, and stopping when closed."""

import threading
import time

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.sources.replay import ReplaySource

FRAMES = [np.full((4, 6, 3), value, np.uint8) for value in (10, 20, 30)]


def test_frames_come_at_their_pace_in_a_loop_with_their_timestamps() -> None:
    source = ReplaySource(FRAMES, fps=50.0, seconds=0.2, stream_id="r", start_offset=1)
    started = time.monotonic()
    frames = list(source.frames())
    elapsed = time.monotonic() - started
    assert [f.index for f in frames] == list(range(10))
    assert [int(f.image[0, 0, 0]) for f in frames[:4]] == [20, 30, 10, 20]
    assert [f.pts_ns for f in frames[:3]] == [0, 20_000_000, 40_000_000]
    assert {f.stream_id for f in frames} == {"r"} and source.live
    assert 0.17 <= elapsed < 0.5 and source.dropped == 0


def test_a_slow_consumer_loses_frames_as_from_a_camera() -> None:
    source = ReplaySource(FRAMES, fps=100.0, seconds=0.5)
    taken = []
    for frame in source.frames():
        taken.append(frame.index)
        time.sleep(0.03)  # three frame intervals per frame
    assert len(taken) + source.dropped == 50
    assert source.dropped >= 30
    assert taken == sorted(taken) and taken[-1] == 49


def test_close_stops_the_stream() -> None:
    source = ReplaySource(FRAMES, fps=20.0, seconds=60)
    threading.Timer(0.2, source.close).start()
    assert len(list(source.frames())) <= 6


def test_a_replay_needs_frames_and_a_rate() -> None:
    with pytest.raises(OrstreamError):
        ReplaySource([], fps=10, seconds=1)
    with pytest.raises(OrstreamError):
        ReplaySource(FRAMES, fps=0, seconds=1)
