"""probe_video on real MP4s, and a clear OrstreamError for every kind of unusable file."""

from pathlib import Path

import av
import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.sources.video_file import H264Writer, probe_video

FPS = 24


def _moving_bar(index: int) -> np.ndarray:
    image = np.full((90, 160, 3), 40, np.uint8)
    image[:, (index * 3) % 140 : (index * 3) % 140 + 20] = (220, 120, 90)
    return image


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with H264Writer(path, 160, 90, FPS) as writer:
        for index in range(2 * FPS):
            writer.write(_moving_bar(index))
    return path


def _remux_index_at_end(source: Path, target: Path) -> None:
    """Copy the packets into an MP4 whose index (moov) comes after the data, as most tools do."""
    with av.open(str(source)) as src, av.open(str(target), mode="w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)


def _first_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_probe_reads_size_rate_and_length(mp4: Path) -> None:
    info = probe_video(mp4)
    assert (info.width, info.height) == (160, 90)
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == 2 * FPS
    assert info.duration_s == pytest.approx(2.0, abs=1 / FPS)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")


def test_probe_accepts_index_at_the_end(mp4: Path, tmp_path: Path) -> None:
    remuxed = tmp_path / "moov_last.mp4"
    _remux_index_at_end(mp4, remuxed)
    assert probe_video(remuxed).frame_count == 2 * FPS


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such file") as error:
        probe_video(tmp_path / "absent.mp4")
    assert "absent.mp4" in str(error.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="is a directory"):
        probe_video(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a video, just some text\n" * 20])
def test_not_a_video(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.mp4"
    path.write_bytes(content)
    with pytest.raises(OrstreamError, match="not a video file") as error:
        probe_video(path)
    assert "notes.mp4" in str(error.value)
    assert "\n" not in str(error.value)


def test_truncated_with_index_at_front(mp4: Path, tmp_path: Path) -> None:
    # The writer puts the index first, so half a file still opens and promises 48 frames.
    half = _first_half(mp4, tmp_path / "half.mp4")
    with av.open(str(half)) as container:
        assert container.streams.video[0].frames == 2 * FPS
    with pytest.raises(OrstreamError, match="truncated"):
        probe_video(half)


def test_truncated_with_index_at_end(mp4: Path, tmp_path: Path) -> None:
    remuxed = tmp_path / "moov_last.mp4"
    _remux_index_at_end(mp4, remuxed)
    half = _first_half(remuxed, tmp_path / "half.mp4")
    with pytest.raises(OrstreamError, match="truncated") as error:
        probe_video(half)
    assert "half.mp4" in str(error.value)


def test_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(OrstreamError, match="no video stream"):
        probe_video(path)


def test_writer_refuses_odd_sizes(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="even size"):
        H264Writer(tmp_path / "odd.mp4", 161, 90, FPS)


def test_writer_is_deterministic(tmp_path: Path) -> None:
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for path in paths:
        with H264Writer(path, 160, 90, FPS) as writer:
            for index in range(12):
                writer.write(_moving_bar(index))
    assert paths[0].read_bytes() == paths[1].read_bytes()
