"""The PyAV file source: every frame, in order, with the file's timestamps; clear errors."""

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sources.pyav_source import PyAVSource


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pyav")
    write_dataset(PhantomSpec(cases=1, seconds=2, seed=3, width=160, height=96), root / "data")
    return root / "data" / "videos" / "video_01.mp4"


def test_every_frame_in_order_with_file_timestamps(video: Path) -> None:
    source = PyAVSource(video, stream_id="cam")
    frames = list(source.frames())
    assert len(frames) == source.info.frame_count == 48
    assert [f.index for f in frames] == list(range(48))
    pts = np.array([f.pts_ns for f in frames])
    assert pts[0] == 0
    np.testing.assert_allclose(np.diff(pts), 1e9 / 24, atol=1e6)
    assert all(f.image.shape == (96, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    assert {f.stream_id for f in frames} == {"cam"}


def test_wanted_frames_only_and_identical_pixels(video: Path) -> None:
    source = PyAVSource(video)
    every = {f.index: f.image for f in source.frames()}
    some = list(source.frames({0, 24, 47}))
    assert [f.index for f in some] == [0, 24, 47]
    for frame in some:
        np.testing.assert_array_equal(frame.image, every[frame.index])


def test_realtime_pace_is_never_early(video: Path) -> None:
    frames = list(PyAVSource(video, realtime=True).frames({0, 12}))
    waited_ns = frames[1].capture_ns - frames[0].capture_ns
    assert waited_ns >= frames[1].pts_ns - 2_000_000  # 0.5 s of file time, 2 ms of slack


def test_bad_files_are_one_clear_error(video: Path, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such file"):
        PyAVSource(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(OrstreamError, match="not a video"):
        PyAVSource(text)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(OrstreamError):
        PyAVSource(cut)
