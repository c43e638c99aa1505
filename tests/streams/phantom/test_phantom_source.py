"""PhantomSource: live frames paced by the monotonic clock, with ground truth per frame."""

import time

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.phantom.source import PhantomSource

FPS = 24.0


def source(**kw: object) -> PhantomSource:
    options: dict[str, object] = {"seed": 2, "seconds": 3, "width": 160, "height": 90, "fps": FPS}
    options.update(kw)
    return PhantomSource(**options)  # type: ignore[arg-type]


def test_unpaced_frames_carry_index_pts_and_truth() -> None:
    live = source(paced=False, stream_id="or-2")
    frames = list(live.frames(limit=40))
    assert [f.index for f in frames] == list(range(40))
    assert [f.pts_ns for f in frames] == [round(i * 1e9 / FPS) for i in range(40)]
    assert all(f.stream_id == "or-2" and not f.discontinuity for f in frames)
    assert all(f.image.shape == (90, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    captures = [f.capture_ns for f in frames]
    assert captures == sorted(captures)
    for f in frames:
        truth = live.truth_of(f.index)
        assert truth is not None and truth.step == live.step_at(f.index / FPS)
    assert live.truth == live.truth_of(39)
    # Each frame owns its pixels: later frames do not overwrite earlier ones.
    assert not np.array_equal(frames[0].image, frames[30].image)


def test_ends_with_the_case_unless_looping() -> None:
    assert len(list(source(paced=False).frames())) == int(3 * FPS)
    looping = list(source(paced=False, loop=True).frames(limit=int(3 * FPS) * 2 + 5))
    marked = [f.index for f in looping if f.discontinuity]
    assert marked == [72, 144]
    assert looping[80].pts_ns > looping[70].pts_ns
    assert np.array_equal(looping[75].image, looping[3].image)


def test_paced_frames_never_come_early() -> None:
    live = source()
    count = 12
    start = time.monotonic_ns()
    frames = list(live.frames(limit=count))
    elapsed_s = (time.monotonic_ns() - start) / 1e9
    assert len(frames) + live.dropped == count
    assert elapsed_s >= (count - 1) / FPS
    first = frames[0]
    for f in frames:
        # Released no earlier than its time on the source clock, measured from the first frame.
        assert f.capture_ns - first.capture_ns >= f.pts_ns - first.pts_ns - 2_000_000


def test_bad_settings_are_refused() -> None:
    with pytest.raises(OrstreamError, match="--seconds"):
        source(seconds=0)
    with pytest.raises(OrstreamError, match="unknown difficulty"):
        source(difficulty="impossible")
