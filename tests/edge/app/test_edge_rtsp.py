"""The runtime on a real RTSP camera (gst-rtsp-server serving a phantom case)."""

import threading
import time
from pathlib import Path

import pytest

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.pitvis.csv_files import read_step_submission
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sinks.rtsp_server import serve_file_rtsp
from orstream.streams.sources.video_file import probe_video


@pytest.fixture(scope="module")
def phantom_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rtsp_phantom")
    write_dataset(PhantomSpec(1, 4, seed=21, width=320, height=180, fps=12.0), out)
    return out / "videos" / "video_01.mp4"


def _config(url: str, package: Path, results: Path) -> dict:
    # A served file ends with the file: reconnecting (which would play it again) is off.
    return {
        "source": {"uri": url, "stream_id": "scope", "reconnect": {"enabled": False}},
        "model": {"package": str(package), "rate_hz": 2},
        "results": {"dir": str(results), "video": 1},
        "grpc": {"enabled": False},
    }


def test_the_runtime_consumes_an_rtsp_camera(
    phantom_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    with serve_file_rtsp(phantom_mp4) as served:
        config = parse_config(_config(served.url, random_workflow_package, tmp_path), "test")
        sink = MemorySink(keep_images=False)
        app = EdgeApp(config, sinks={"scope": [SinkSpec("memory", lambda w, h, fps: sink)]})
        assert app.streams["scope"].source.source.live
        app.run()
    status = app.status()
    frames = probe_video(phantom_mp4).frame_count
    assert frames - 2 <= status.video_frames_in <= frames
    assert status.video_frames_out == status.video_frames_in
    assert status.models[0].inferred >= 6
    time_s, _ = read_step_submission(tmp_path / "steps" / "video_01.csv")
    assert len(time_s) >= 3


def test_without_reconnecting_a_camera_that_goes_away_ends_the_run_with_results_flushed(
    phantom_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    outcome: list[object] = []
    with serve_file_rtsp(phantom_mp4) as served:
        config = parse_config(_config(served.url, random_workflow_package, tmp_path), "test")
        app = EdgeApp(config)

        def run() -> None:
            app.run()
            outcome.append(app.failures())

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 10
        while app.streams["scope"].source.frames_in < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
    # The server is gone with the block; the run must end on its own, soon.
    runner.join(30)
    assert not runner.is_alive()
    assert outcome
    assert all("\n" not in failure for failure in outcome[0])  # type: ignore[union-attr]
    status = app.status()
    assert 12 <= status.video_frames_in < probe_video(phantom_mp4).frame_count
    time_s, _ = read_step_submission(tmp_path / "steps" / "video_01.csv")
    assert len(time_s) >= 1
