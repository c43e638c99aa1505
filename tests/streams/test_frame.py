"""Frame: the immutable unit every source emits."""

import dataclasses

import numpy as np
import pytest

from orstream.streams.frame import Frame


def test_frame_keeps_its_image_and_clocks() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    frame = Frame(image=image, pts_ns=41_666_667, capture_ns=123, index=1, stream_id="or-1")
    assert frame.image is image  # no copy on the hot path
    assert (frame.pts_ns, frame.capture_ns, frame.index, frame.stream_id) == (
        41_666_667,
        123,
        1,
        "or-1",
    )
    assert frame.discontinuity is False


def test_frame_is_immutable() -> None:
    frame = Frame(np.zeros((2, 2, 3), np.uint8), 0, 0, 0, "s", discontinuity=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.index = 5  # type: ignore[misc]
    assert dataclasses.replace(frame, index=5).index == 5
