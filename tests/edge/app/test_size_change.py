"""A feed that changes resolution mid-stream (640x360 -> 1280x720 in one MPEG-TS file): the
overlay follows, the recording starts a new segment at the new size, the RTSP output keeps its
size, inference and results go on to the end, and nothing fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sources.video_file import probe_video

pytestmark = pytest.mark.timeout(120)


def part(path: Path, width: int, height: int, pattern: str) -> Path:
    subprocess.run(
        [
            "gst-launch-1.0", "-q", "videotestsrc", "num-buffers=36", f"pattern={pattern}", "!",
            f"video/x-raw,width={width},height={height},framerate=12/1", "!",
            "x264enc", "key-int-max=12", "!", "h264parse", "!", "mpegtsmux", "!",
            "filesink", f"location={path}",
        ],
        check=True,
    )  # fmt: skip
    return path


def test_a_resolution_change_mid_stream_starts_a_new_segment_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    small = part(tmp_path / "a.ts", 640, 360, "ball").read_bytes()
    large = part(tmp_path / "b.ts", 1280, 720, "smpte").read_bytes()
    switched = tmp_path / "video_01.ts"
    switched.write_bytes(small + large)  # MPEG-TS parts play one after the other
    config = parse_config(
        {
            "source": {"uri": str(switched), "stream_id": "or1"},
            "model": {"package": str(SHIPPED_PACKAGE)},
            "record": {"path": str(tmp_path / "or1.mp4"), "min_free_mb": 0},
            "rtsp": {"port": 0},
            "results": {"dir": str(tmp_path / "results")},
            "grpc": {"enabled": False},
        },
        "test",
    )
    shown = MemorySink()
    app = EdgeApp(config, sinks={"or1": [SinkSpec("display", lambda w, h, fps: shown, True)]})
    app.run()
    assert app.failures() == []
    status = app.status()
    assert status.video_frames_in == status.video_frames_out == 72
    segments = [probe_video(tmp_path / name) for name in ("or1.mp4", "or1-002.mp4")]
    assert [(s.width, s.height, s.frame_count) for s in segments] == [
        (640, 360, 36),
        (1280, 720, 36),
    ]
    # The display (a sink of one size) got every frame at the size it opened with.
    assert len(shown.frames) == 72
    assert {frame.image.shape for frame in shown.frames} == {(360, 640, 3)}
    rows = (tmp_path / "results/steps/video_01.csv").read_text().splitlines()
    assert len(rows) == 1 + 6  # a result for every second of both parts


def test_the_run_names_every_segment_it_recorded(tmp_path: Path) -> None:
    switched = tmp_path / "video_01.ts"
    switched.write_bytes(
        part(tmp_path / "a.ts", 320, 180, "ball").read_bytes()
        + part(tmp_path / "b.ts", 640, 360, "smpte").read_bytes()
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "orstream.cli", "edge", "run", "--no-grpc",
            "--source", str(switched), "--record", str(tmp_path / "or1.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        f"overlay video in {tmp_path / 'or1.mp4'}, {tmp_path / 'or1-002.mp4'} (2 segments)"
        in done.stderr
    )
