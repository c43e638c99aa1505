"""RTSP with gst-rtsp-server: a served file reaches GstSource, gst-launch and ffprobe with every
frame and its timing; the live RTSP output is opened by standard clients and shows what was
written."""

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.rtsp_output import RtspOutput
from orstream.streams.sinks.rtsp_server import RtspServer, serve_file_rtsp
from orstream.streams.sinks.sink import Sink
from orstream.streams.sources.gst_source import GstSource
from orstream.streams.sources.pyav_source import PyAVSource

pytestmark = pytest.mark.timeout(60)

COLOUR = (200, 40, 90)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rtsp")
    write_dataset(PhantomSpec(cases=1, seconds=2, seed=6, width=160, height=96), root / "data")
    return root / "data" / "videos" / "video_01.mp4"


@pytest.fixture()
def live_output() -> Iterator[RtspOutput]:
    """An RTSP output fed with solid-colour frames at 30 fps while the test runs."""
    output = RtspOutput(96, 64, 30.0, port=0, path="/live")
    stop = threading.Event()

    def feed() -> None:
        started = time.monotonic_ns()
        index = 0
        while not stop.is_set():
            image = np.empty((64, 96, 3), np.uint8)
            image[:] = COLOUR
            output.write(Frame(image, index * 33_333_333, time.monotonic_ns(), index, "cam"))
            index += 1
            time.sleep(max(0.0, (started + index * 33_333_333 - time.monotonic_ns()) / 1e9))

    feeder = threading.Thread(target=feed)
    feeder.start()
    yield output
    stop.set()
    feeder.join()
    output.close()


def test_served_file_reaches_gstsource_with_every_frame_and_its_timing(video: Path) -> None:
    expected = [f.pts_ns for f in PyAVSource(video).frames()]
    with serve_file_rtsp(video, port=0) as served:
        assert served.url.startswith("rtsp://127.0.0.1:") and served.url.endswith("/case")
        source = GstSource(served.url, stream_id="or1")
        started = time.monotonic()
        frames = list(source.frames())
        took_s = time.monotonic() - started
    assert source.live
    assert len(frames) == len(expected) == 48
    assert [f.index for f in frames] == list(range(48))
    np.testing.assert_allclose([f.pts_ns for f in frames], expected, atol=1_000_000)
    assert all(f.image.shape == (96, 160, 3) for f in frames)
    assert took_s >= 0.8 * expected[-1] / 1e9  # served at the file's pace


def test_served_file_reaches_standard_clients(video: Path) -> None:
    with serve_file_rtsp(video, port=0, mount="/cases/one") as served:
        probe = subprocess.run(
            [
                "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-count_frames",
                "-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_read_frames",
                "-of", "csv=p=0", served.url,
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        launch = subprocess.run(
            [
                "gst-launch-1.0", "rtspsrc", f"location={served.url}", "protocols=tcp", "!",
                "rtph264depay", "!", "avdec_h264", "!", "fakesink", "silent=false", "-v",
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "h264,48"
    assert launch.returncode == 0, launch.stderr
    assert launch.stdout.count("last-message = chain") == 48


def test_serving_a_file_that_cannot_be_served(video: Path, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such file"), serve_file_rtsp(tmp_path / "none.mp4"):
        pass
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(OrstreamError, match="truncated"), serve_file_rtsp(cut):
        pass
    mpeg4 = tmp_path / "mpeg4.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
            "-t", "1", "-c:v", "mpeg4", str(mpeg4),
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    refused = r"sends H\.264 as it is; this file is mpeg4"
    with pytest.raises(OrstreamError, match=refused), serve_file_rtsp(mpeg4):
        pass


def test_live_output_is_opened_by_gst_launch(live_output: RtspOutput) -> None:
    assert isinstance(live_output, Sink) and live_output.name == f"rtsp:{live_output.url}"
    launch = subprocess.run(
        [
            "gst-launch-1.0", "rtspsrc", f"location={live_output.url}", "protocols=tcp", "!",
            "rtph264depay", "!", "avdec_h264", "!", "identity", "eos-after=15", "!", "fakesink",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert launch.returncode == 0, launch.stderr
    assert "Got EOS" in launch.stdout


def test_live_output_is_opened_by_ffprobe(live_output: RtspOutput) -> None:
    probe = subprocess.run(
        [
            "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-read_intervals", "%+1",
            "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0",
            live_output.url,
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    codec, width, height, frames = probe.stdout.strip().split(",")
    assert (codec, width, height) == ("h264", "96", "64")
    assert int(frames) > 0


def test_live_output_shows_what_was_written(live_output: RtspOutput) -> None:
    source = GstSource(live_output.url)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 15:
            break
    assert live_output.sent >= 15
    pts = np.array([f.pts_ns for f in frames])
    assert np.all(np.diff(pts) > 0)
    # The source paces at 30 fps and the output keeps that timing.
    np.testing.assert_allclose(np.diff(pts), 33_333_333, atol=3_000_000)
    for frame in frames:
        assert frame.image.shape == (64, 96, 3)
        np.testing.assert_allclose(frame.image.reshape(-1, 3).mean(axis=0), COLOUR, atol=8)


def test_nobody_watching_costs_nothing_and_a_taken_port_is_a_clear_error() -> None:
    output = RtspOutput(32, 32, 10.0, port=0)
    try:
        output.write(Frame(np.zeros((32, 32, 3), np.uint8), 0, 0, 0, "cam"))
        assert output.sent == 0
        port = int(output.url.split(":")[2].split("/")[0])
        with pytest.raises(OrstreamError, match=rf"cannot listen on 127.0.0.1:{port}"):
            RtspServer(port)
    finally:
        output.close()


def test_a_stream_without_video_is_a_clear_error() -> None:
    with RtspServer(0) as server:
        factory = server.rtsp.RTSPMediaFactory.new()
        factory.set_launch("( audiotestsrc is-live=true ! audioconvert ! rtpL16pay name=pay0 )")
        url = server.mount("/microphone", factory)
        with pytest.raises(OrstreamError, match=r"/microphone: has no video stream"):
            list(GstSource(url).frames())
