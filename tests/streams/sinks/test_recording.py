"""A recording made of segments: a new one when the frame size changes or one is long enough,
the oldest deleted beyond max_files, a clean stop below the free-space threshold, and every
file left behind playable, also when the disk fills mid-write."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.recording import Recording, Rotation
from orstream.streams.sources.video_file import probe_video

pytestmark = pytest.mark.timeout(120)
FPS = 10.0


def frame(index: int, width: int = 64, height: int = 48) -> Frame:
    image = np.full((height, width, 3), (index * 7) % 256, np.uint8)
    return Frame(image, int(index * 1e9 / FPS), 0, index, "or1")


def test_a_size_change_starts_a_new_segment_at_the_new_size(tmp_path: Path) -> None:
    recording = Recording(tmp_path / "or1.mp4", FPS, Rotation(min_free_mb=0))
    for index in range(12):
        recording.write(frame(index))
    for index in range(12, 20):
        recording.write(frame(index, 96, 64))
    recording.close()
    assert recording.segments == [tmp_path / "or1.mp4", tmp_path / "or1-002.mp4"]
    first, second = (probe_video(path) for path in recording.segments)
    assert (first.width, first.height, first.frame_count) == (64, 48, 12)
    assert (second.width, second.height, second.frame_count) == (96, 64, 8)


def test_segments_rotate_by_duration_and_the_oldest_go_beyond_max_files(tmp_path: Path) -> None:
    rotation = Rotation(segment_s=1.0, max_files=2, min_free_mb=0)
    recording = Recording(tmp_path / "or1.mp4", FPS, rotation)
    for index in range(45):  # 4.5 s: five segments of up to 1 s
        recording.write(frame(index))
    recording.close()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["or1-004.mp4", "or1-005.mp4"]
    assert [probe_video(tmp_path / name).frame_count for name in names] == [10, 5]


def test_below_the_free_space_threshold_it_stops_cleanly_and_says_why(tmp_path: Path) -> None:
    free = iter([900.0, 900.0, 400.0])  # the disk fills while recording

    recording = Recording(
        tmp_path / "or1.mp4", FPS, Rotation(min_free_mb=500), lambda _: next(free)
    )
    with pytest.raises(OrstreamError, match=r"only 400 MB free .*min_free_mb 500.*stopped"):
        for index in range(100):
            recording.write(frame(index))
    assert recording.written == 20  # checked about once a second of video
    assert probe_video(tmp_path / "or1.mp4").frame_count == 20  # finished, playable
    with pytest.raises(OrstreamError, match="has stopped"):
        recording.write(frame(100))


def test_a_full_disk_mid_recording_leaves_a_playable_file_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """A real full disk: a 150 kB tmpfs in a mount namespace of its own (no root needed where
    user namespaces are allowed), the edge recording onto it with no free-space threshold."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user/mount namespaces here: {probe.stderr.decode().strip()}")
    write_dataset(PhantomSpec(1, 20, seed=5, width=320, height=180, fps=12.0), tmp_path / "data")
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    config = {
        "source": {"uri": str(tmp_path / "data/videos/video_01.mp4"), "stream_id": "or1"},
        "model": {"package": str(SHIPPED_PACKAGE)},
        "record": {"path": str(disk / "or1.mp4"), "min_free_mb": 0},
        "results": {"dir": str(tmp_path / "results")},
        "grpc": {"enabled": False},
    }
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(config))
    script = (
        f"mount -t tmpfs -o size=150k tmpfs {disk} && "
        f"{sys.executable} -m orstream.cli edge run --config {tmp_path / 'edge.yaml'}; "
        f"code=$?; cp {disk}/or1.mp4 {kept}/; exit $code"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 2, done.stderr  # the run says a sink failed...
    assert "or1.sink.record failed" in done.stderr and "No space left" in done.stderr
    assert "Traceback" not in done.stderr
    assert "video frames in 240, out 240" not in done.stdout + done.stderr  # ...it did fail
    steps = (tmp_path / "results/steps/video_01.csv").read_text().splitlines()
    assert len(steps) == 1 + 20  # ...and inference went on to the case's end
    recorded = []
    with av.open(str(kept / "or1.mp4")) as container:  # cut short: played as far as it goes
        try:
            for picture in container.decode(video=0):
                recorded.append(picture.to_ndarray(format="rgb24"))
        except av.error.InvalidDataError:
            pass  # the fragment the full disk cut
    assert len(recorded) >= 24  # what fitted on the disk plays: at least two fragments
    assert recorded[-1].shape == (180, 320, 3)


def test_segments_rotate_by_size_checked_about_once_a_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recording = Recording(tmp_path / "or1.mp4", FPS, Rotation(segment_mb=0.01, min_free_mb=0))
    for index in range(35):  # noise: every second of it is far over 10 kB
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        recording.write(Frame(image, int(index * 1e9 / FPS), 0, index, "or1"))
        time.sleep(0.02)  # a live pace, more or less: the encoder keeps up with the writes
    recording.close()
    counts = [probe_video(path).frame_count for path in recording.segments]
    assert len(counts) >= 3 and sum(counts) == 35
    assert all(count >= 10 for count in counts[:-1])  # the size is read once a second
