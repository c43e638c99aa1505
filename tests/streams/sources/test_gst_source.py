"""The GStreamer source on real files and streams: every frame with the file's timestamps,
pacing, gaps, live test patterns, RTP over UDP, close() from another thread, clear errors."""

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.mp4_recorder import Mp4Recorder
from orstream.streams.sources.gst_source import GstSource
from orstream.streams.sources.pyav_source import PyAVSource

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gst_source")
    write_dataset(PhantomSpec(cases=1, seconds=2, seed=3, width=160, height=96), root / "data")
    return root / "data" / "videos" / "video_01.mp4"


def test_file_every_frame_in_order_with_the_files_timestamps(video: Path) -> None:
    source = GstSource(str(video), stream_id="cam")
    frames = list(source.frames())
    reference = list(PyAVSource(video).frames())
    assert not source.live
    assert len(frames) == len(reference) == 48
    assert [f.index for f in frames] == list(range(48))
    np.testing.assert_allclose(
        [f.pts_ns for f in frames], [f.pts_ns for f in reference], atol=1_000_000
    )
    assert not any(f.discontinuity for f in frames)
    assert {f.stream_id for f in frames} == {"cam"}
    for mine, theirs in zip(frames, reference, strict=True):
        assert mine.image.shape == (96, 160, 3) and mine.image.dtype == np.uint8
        # contiguous and read-only: one copy out of GStreamer, shared safely downstream
        assert mine.image.flags.c_contiguous and not mine.image.flags.writeable
        # Same decoder, different RGB conversion: equal up to rounding.
        difference = np.abs(mine.image.astype(int) - theirs.image.astype(int)).mean()
        assert difference < 4, (mine.index, difference)
    capture = np.array([f.capture_ns for f in frames])
    assert np.all(np.diff(capture) >= 0)


def test_file_uri_with_an_escaped_path(video: Path, tmp_path: Path) -> None:
    spaced = tmp_path / "case one #1" / "video.mp4"
    spaced.parent.mkdir()
    shutil.copy(video, spaced)
    frames = list(GstSource(spaced.as_uri()).frames())
    assert len(frames) == 48


def test_every_frame_arrives_when_the_consumer_is_slow(video: Path) -> None:
    delivered = 0
    for frame in GstSource(video).frames():
        if frame.index < 10:
            time.sleep(0.03)  # the decoder waits (backpressure) instead of dropping
        delivered += 1
    assert delivered == 48


def test_realtime_plays_at_the_files_pace(video: Path) -> None:
    frames = list(GstSource(video, realtime=True).frames())
    assert len(frames) == 48
    played_s = (frames[-1].capture_ns - frames[0].capture_ns) / 1e9
    assert played_s >= 0.8 * frames[-1].pts_ns / 1e9


def test_timestamp_gap_marks_a_discontinuity(tmp_path: Path) -> None:
    path = tmp_path / "gap.mp4"
    recorder = Mp4Recorder(path, 64, 48, 25.0)
    written = [i * 40_000_000 for i in range(10)] + [
        3_000_000_000 + i * 40_000_000 for i in range(10)
    ]
    for index, pts in enumerate(written):
        recorder.write(Frame(np.full((48, 64, 3), index * 10, np.uint8), pts, 0, index, "x"))
    recorder.close()
    frames = list(GstSource(path).frames())
    assert len(frames) == 20
    np.testing.assert_allclose([f.pts_ns for f in frames], written, atol=1_000_000)
    assert [f.index for f in frames if f.discontinuity] == [10]


def test_test_pattern_is_live_with_exact_colours_at_an_odd_width() -> None:
    # 161 pixels of RGB is 483 bytes a row: GStreamer pads rows to 484, the frame must not.
    source = GstSource("videotestsrc://?pattern=red&width=161&height=21&fps=30&frames=5")
    frames = list(source.frames())
    assert source.live
    assert len(frames) == 5
    for frame in frames:
        assert frame.image.shape == (21, 161, 3)
        np.testing.assert_array_equal(frame.image.reshape(-1, 3), [[255, 0, 0]] * (21 * 161))
    assert np.all(np.diff([f.pts_ns for f in frames]) > 0)


def test_close_from_another_thread_ends_frames_promptly(video: Path) -> None:
    for source in (GstSource("videotestsrc://?fps=30"), GstSource(video, realtime=True)):
        threading.Timer(0.4, source.close).start()
        started = time.monotonic()
        frames = list(source.frames())
        assert frames, source.uri
        assert time.monotonic() - started < 5
        assert list(source.frames()) == []  # closed stays closed


def test_rtp_h264_over_udp(tmp_path: Path) -> None:
    port = _free_udp_port()
    source = GstSource(f"udp://127.0.0.1:{port}", open_timeout_s=10)
    frames: list[Frame] = []

    def receive() -> None:
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == 20:
                source.close()

    receiver = threading.Thread(target=receive)
    receiver.start()
    time.sleep(0.3)  # the receiver binds its port first
    sender = subprocess.run(
        [
            "gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "num-buffers=45", "!",
            "video/x-raw,width=128,height=96,framerate=30/1", "!",
            "x264enc", "tune=zerolatency", "!", "rtph264pay", "config-interval=-1", "!",
            "udpsink", "host=127.0.0.1", f"port={port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    source.close()
    receiver.join(10)
    assert sender.returncode == 0, sender.stderr
    assert len(frames) == 20
    assert all(f.image.shape == (96, 128, 3) for f in frames)
    pts = np.array([f.pts_ns for f in frames])
    assert pts[0] == 0 and np.all(np.diff(pts) > 0)


def test_udp_with_nothing_arriving_times_out() -> None:
    source = GstSource(f"udp://127.0.0.1:{_free_udp_port()}", open_timeout_s=0.5)
    with pytest.raises(OrstreamError, match=r"no video arrived within 0.5 s"):
        list(source.frames())


def test_rtsp_nobody_serves_fails_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OrstreamError, match=rf"rtsp://127.0.0.1:{port}/case: .*connect"):
        list(GstSource(f"rtsp://127.0.0.1:{port}/case").frames())
    assert time.monotonic() - started < 5


def test_rtsp_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        source = GstSource(f"rtsp://127.0.0.1:{port}/case", open_timeout_s=1.0)
        with pytest.raises(OrstreamError, match="no video arrived within 1 s"):
            list(source.frames())


def test_bad_files_fail_at_once_with_one_clear_line(video: Path, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match=r"missing\.mp4: no such file"):
        GstSource(tmp_path / "missing.mp4")
    with pytest.raises(OrstreamError, match="is a directory"):
        GstSource(tmp_path)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(OrstreamError, match=r"notes\.mp4: not a video file"):
        GstSource(text)
    sound = tmp_path / "sound.wav"
    _gst_launch(
        "audiotestsrc", "num-buffers=20", "!", "wavenc", "!", "filesink", f"location={sound}"
    )
    with pytest.raises(OrstreamError, match=r"sound\.wav: has no video stream"):
        GstSource(sound)


def test_truncated_mp4s_fail_before_any_frame(video: Path, tmp_path: Path) -> None:
    # Index (moov) first, as the phantom writes: the frames stop early.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(OrstreamError, match=r"cut\.mp4: truncated: \d+ of 48 frames present"):
        GstSource(cut)
    # In fragments, as orstream's recorder writes: the stated length is not all there.
    whole = tmp_path / "whole.mp4"
    recorder = Mp4Recorder(whole, 64, 48, 25.0)
    for index in range(25):
        recorder.write(Frame(np.zeros((48, 64, 3), np.uint8), index * 40_000_000, 0, index, "x"))
    recorder.close()
    headless = tmp_path / "headless.mp4"
    headless.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(OrstreamError, match=r"headless\.mp4: truncated: frames reach"):
        GstSource(headless.as_uri())


def test_uris_it_cannot_play_are_one_clear_error() -> None:
    with pytest.raises(OrstreamError, match=r"unknown URI scheme 'http'.*rtsp"):
        GstSource("http://example.com/case.mp4")
    with pytest.raises(OrstreamError, match="no such device /dev/video99"):
        GstSource("v4l2:///dev/video99")
    with pytest.raises(OrstreamError, match=r"udp://HOST:PORT"):
        GstSource("udp://127.0.0.1")
    with pytest.raises(OrstreamError, match="unknown pattern 'plaid'"):
        GstSource("videotestsrc://?pattern=plaid")
    with pytest.raises(OrstreamError, match="unknown parameter 'colour'"):
        GstSource("videotestsrc://?colour=red")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _gst_launch(*pipeline: str) -> None:
    subprocess.run(["gst-launch-1.0", "-q", *pipeline], check=True, capture_output=True, timeout=30)
