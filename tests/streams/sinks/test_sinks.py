"""Sinks: the MP4 recorder keeps every frame with its source timing (counted by ffprobe), and
the memory sink keeps what it is given."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sinks.mp4_recorder import Mp4Recorder
from orstream.streams.sinks.sink import Sink
from orstream.streams.sources.gst_source import GstSource

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sinks")
    write_dataset(PhantomSpec(cases=1, seconds=2, seed=4, width=160, height=96), root / "data")
    return root / "data" / "videos" / "video_01.mp4"


def _probe(path: Path) -> tuple[int, list[float]]:
    """Frames ffprobe decodes from a file, and every frame's pts in seconds."""
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames:frame=pts_time", "-of", "json", str(path),
        ],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    probed = json.loads(result.stdout)
    times = [float(frame["pts_time"]) for frame in probed["frames"]]
    return int(probed["streams"][0]["nb_read_frames"]), times


def _gray(index: int, pts_ns: int, width: int = 64, height: int = 48) -> Frame:
    return Frame(np.full((height, width, 3), (index * 7) % 256, np.uint8), pts_ns, 0, index, "x")


def test_recording_keeps_every_frame_of_a_source_with_its_timing(
    video: Path, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.mp4"
    source_frames = list(GstSource(video).frames())
    recorder = Mp4Recorder(path, 160, 96, 24.0)
    assert isinstance(recorder, Sink) and recorder.name == f"mp4:{path}"
    for frame in source_frames:
        recorder.write(frame)
    recorder.close()
    count, times = _probe(path)
    assert count == len(source_frames) == 48
    np.testing.assert_allclose(times, [f.pts_ns / 1e9 for f in source_frames], atol=1e-3)
    replayed = list(GstSource(path).frames())
    assert len(replayed) == 48
    for before, after in zip(source_frames, replayed, strict=True):
        assert np.abs(before.image.astype(int) - after.image.astype(int)).mean() < 6


def test_recording_keeps_source_pts_not_frame_counts(tmp_path: Path) -> None:
    # A 30 fps nominal stream whose frames came irregularly (and start late): the file keeps
    # the real spacing, counted from the first frame.
    path = tmp_path / "irregular.mp4"
    written = [5_000_000_000 + ms * 1_000_000 for ms in (0, 33, 80, 100, 250, 283, 316, 500)]
    recorder = Mp4Recorder(path, 64, 48, 30.0)
    for index, pts in enumerate(written):
        recorder.write(_gray(index, pts))
    recorder.close()
    count, times = _probe(path)
    assert count == len(written)
    np.testing.assert_allclose(times, [(p - written[0]) / 1e9 for p in written], atol=1e-3)


def test_recording_writes_all_frames_when_they_come_faster_than_it_encodes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "burst.mp4"
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    recorder = Mp4Recorder(path, 320, 240, 30.0)
    for index in range(90):  # noise is slow to encode: write() must wait, not drop
        recorder.write(Frame(np.roll(noise, index, axis=1), index * 33_333_333, 0, index, "x"))
    recorder.close()
    assert recorder.written == 90
    assert _probe(path)[0] == 90


def test_recording_a_width_whose_rows_need_padding(tmp_path: Path) -> None:
    path = tmp_path / "padded.mp4"
    recorder = Mp4Recorder(path, 162, 90, 25.0)  # 486 bytes a row, GStreamer wants 488
    for index in range(10):
        recorder.write(_gray(index, index * 40_000_000, 162, 90))
    recorder.close()
    frames = list(GstSource(path).frames())
    assert len(frames) == 10
    for frame in frames:
        assert frame.image.shape == (90, 162, 3)
        assert abs(frame.image.astype(int).mean() - frame.index * 7) < 3


def test_a_source_restart_never_sends_pts_backwards(tmp_path: Path) -> None:
    path = tmp_path / "restart.mp4"
    written = [0, 40_000_000, 80_000_000, 0, 40_000_000]
    recorder = Mp4Recorder(path, 64, 48, 25.0)
    for index, pts in enumerate(written):
        recorder.write(_gray(index, pts))
    recorder.close()
    count, times = _probe(path)
    assert count == 5
    np.testing.assert_allclose(times, [0, 0.04, 0.08, 0.12, 0.16], atol=1e-3)


def test_close_is_final_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "closed.mp4"
    recorder = Mp4Recorder(path, 64, 48, 25.0)
    recorder.write(_gray(0, 0))
    recorder.close()
    recorder.write(_gray(1, 40_000_000))  # ignored: the file is finished
    recorder.close()
    assert _probe(path)[0] == 1


def test_recorder_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="even frame size, got 65x48"):
        Mp4Recorder(tmp_path / "odd.mp4", 65, 48, 25.0)
    with pytest.raises(OrstreamError, match="does not exist"):
        Mp4Recorder(tmp_path / "nowhere" / "case.mp4", 64, 48, 25.0)
    recorder = Mp4Recorder(tmp_path / "sized.mp4", 64, 48, 25.0)
    with pytest.raises(OrstreamError, match=r"frame 3 is uint8 \(48, 32, 3\), expected"):
        recorder.write(Frame(np.zeros((48, 32, 3), np.uint8), 0, 0, 3, "x"))
    recorder.close()
    (tmp_path / "taken").mkdir()
    with pytest.raises(OrstreamError, match="taken"):
        Mp4Recorder(tmp_path / "taken", 64, 48, 25.0)


def test_memory_sink_keeps_frames_in_order() -> None:
    sink = MemorySink()
    light = MemorySink(keep_images=False)
    assert isinstance(sink, Sink) and sink.name == "memory"
    for index in range(3):
        sink.write(_gray(index, index))
        light.write(_gray(index, index))
    sink.close()
    light.close()
    sink.write(_gray(3, 3))
    assert [f.index for f in sink.frames] == [0, 1, 2]
    assert sink.frames[2].image[0, 0, 0] == 14
    assert [f.pts_ns for f in light.frames] == [0, 1, 2]
    assert all(f.image is None for f in light.frames)
