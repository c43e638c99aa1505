"""``orstream edge run --display fullscreen:1``: the overlay video on monitor 1 of two, seen on
a screenshot of a real X server (Xorg with two dummy monitors, see ``x_displays``)."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from x_displays import MONITORS, letterboxed, picture_box, screenshot, two_monitor_xorg

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def two_monitors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from two_monitor_xorg(tmp_path_factory.mktemp("xorg"))


def test_the_runtime_shows_its_video_fullscreen_on_the_monitor_asked_for(
    project_root: Path, two_monitors: str
) -> None:
    source = "videotestsrc://?pattern=white&width=320&height=180&fps=10&frames=60"
    command = [str(project_root / ".venv/bin/orstream"), "edge", "run", "--no-grpc"]
    command += ["--source", source, "--display", "fullscreen:1"]
    env = {**os.environ, "DISPLAY": two_monitors}
    env.pop("WAYLAND_DISPLAY", None)
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    expected = letterboxed(320, 180, *MONITORS[1])
    box = None
    deadline = time.monotonic() + 30
    while box is None and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
        shot = screenshot(two_monitors)
        box = picture_box(shot)
    output = run.communicate(timeout=60)[0].decode(errors="replace")
    assert run.returncode == 0, output[-2000:]
    assert box is not None, "the video never showed"
    assert all(abs(a - b) <= 2 for a, b in zip(box, expected, strict=True)), (box, expected)
    assert "ended, 60 frames" in output


def test_ctrl_c_at_a_terminal_closes_the_display_cleanly(
    project_root: Path, two_monitors: str
) -> None:
    source = "videotestsrc://?pattern=white&width=320&height=180&fps=10"
    command = [str(project_root / ".venv/bin/orstream"), "edge", "run", "--no-grpc"]
    command += ["--source", source, "--display", "1"]
    env = {**os.environ, "DISPLAY": two_monitors}
    env.pop("WAYLAND_DISPLAY", None)
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches every process in it.
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while picture_box(screenshot(two_monitors)) is None and time.monotonic() < deadline:
        time.sleep(0.3)
    os.killpg(run.pid, signal.SIGINT)
    output = run.communicate(timeout=60)[0].decode(errors="replace")
    assert run.returncode == 0 and "Traceback" not in output, output[-2000:]
    assert picture_box(screenshot(two_monitors)) is None  # the window has gone
