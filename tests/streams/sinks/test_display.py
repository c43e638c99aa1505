"""The OR display on real X servers (``x_displays``), checked on screenshots of the screen.

Xorg's two dummy monitors render OpenGL in software, so the display runs its first choice,
``gtkglsink``; an Xvfb without GLX makes it fall back to ``gtksink``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from x_displays import (
    MONITORS,
    letterboxed,
    picture_box,
    screenshot,
    two_monitor_xorg,
    xvfb,
)

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.sinks.display import DisplaySettings, DisplaySink
from orstream.streams.sinks.sink import Sink

pytestmark = pytest.mark.timeout(120)

COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)], np.uint8)
"""The test picture's quadrants: top left, top right, bottom left, bottom right."""

BLEND = 3
"""Pixels beside a scaled picture's edge that may blend it with the black bar."""


@pytest.fixture(scope="module")
def two_monitors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from two_monitor_xorg(tmp_path_factory.mktemp("xorg"))


@pytest.fixture(scope="module")
def screen_without_gl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from xvfb(tmp_path_factory.mktemp("xvfb"), "-extension", "GLX")


def quadrants(width: int, height: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    half_h, half_w = height // 2, width // 2
    image[:half_h, :half_w], image[:half_h, half_w:] = COLOURS[0], COLOURS[1]
    image[half_h:, :half_w], image[half_h:, half_w:] = COLOURS[2], COLOURS[3]
    return image


def show_until(
    sink: DisplaySink, image: np.ndarray, display: str, expected: tuple[int, int, int, int]
) -> np.ndarray:
    """Write frames until the screen shows the picture at ``expected`` (or 15 s pass)."""
    deadline = time.monotonic() + 15
    index = 0
    while True:
        for _ in range(5):
            sink.write(Frame(image, index * 40_000_000, time.monotonic_ns(), index, "or1"))
            index += 1
            time.sleep(0.04)
        shot = screenshot(display)
        box = picture_box(shot)
        if box is not None and all(abs(a - b) <= 2 for a, b in zip(box, expected, strict=True)):
            return shot
        if time.monotonic() > deadline:
            pytest.fail(f"the screen shows the picture at {box}, expected {expected}")


def assert_quadrants(shot: np.ndarray, box: tuple[int, ...]) -> None:
    """Each quadrant of ``box`` is its colour (away from the edges, where scaling blends)."""
    x0, y0, x1, y1 = box
    mid_x, mid_y = (x0 + x1) // 2, (y0 + y1) // 2
    margin = 4
    areas = [(x0, y0, mid_x, mid_y), (mid_x, y0, x1, mid_y), (x0, mid_y, mid_x, y1),
             (mid_x, mid_y, x1, y1)]  # fmt: skip
    for colour, (left, top, right, bottom) in zip(COLOURS, areas, strict=True):
        inner = shot[top + margin : bottom - margin, left + margin : right - margin]
        difference = np.abs(inner.astype(int) - colour.astype(int)).max()
        assert difference <= 8, f"quadrant {colour} at {left},{top} is off by {difference}"


def assert_black(shot: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    if x1 > x0 and y1 > y0:
        assert shot[y0:y1, x0:x1].max() <= 8, f"not black in {x0},{y0} to {x1},{y1}"


@pytest.mark.parametrize(
    ("monitor", "frame_size"),
    [(1, (320, 180)), (0, (320, 240))],
    ids=["16:9-on-monitor-1-bars-above-and-below", "4:3-on-monitor-0-bars-left-and-right"],
)
def test_fullscreen_on_a_monitor_letterboxes_the_picture_there(
    two_monitors: str, monkeypatch: pytest.MonkeyPatch, monitor: int, frame_size: tuple[int, int]
) -> None:
    monkeypatch.setenv("DISPLAY", two_monitors)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    frame_w, frame_h = frame_size
    x, y, w, h = MONITORS[monitor]
    box = letterboxed(frame_w, frame_h, x, y, w, h)
    sink = DisplaySink(frame_w, frame_h, DisplaySettings(fullscreen=True, monitor=monitor))
    try:
        assert isinstance(sink, Sink) and sink.video_sink == "gtkglsink"
        assert sink.monitor.startswith(f"{monitor} DUMMY{monitor} {w}x{h}+{x}+{y}")
        shot = show_until(sink, quadrants(frame_w, frame_h), two_monitors, box)
    finally:
        sink.close()
    assert_quadrants(shot, box)
    # Black bars fill the rest of the monitor; the other monitor shows nothing at all.
    assert_black(shot, x, y, x + w, box[1] - BLEND)
    assert_black(shot, x, box[3] + BLEND, x + w, y + h)
    assert_black(shot, x, y, box[0] - BLEND, y + h)
    assert_black(shot, box[2] + BLEND, y, x + w, y + h)
    other_x, other_y, other_w, other_h = MONITORS[1 - monitor]
    assert_black(shot, other_x, other_y, other_x + other_w, other_y + other_h)


def test_a_window_on_the_primary_monitor_by_default(
    two_monitors: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", two_monitors)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = DisplaySink(320, 180, DisplaySettings())
    try:
        assert sink.monitor == "0 DUMMY0 1280x800+0+0 primary"
        # The frame's size, centred on monitor 0 (no window manager: no frame around it).
        box = (480, 310, 800, 490)
        shot = show_until(sink, quadrants(320, 180), two_monitors, box)
    finally:
        sink.close()
    assert_quadrants(shot, box)
    assert_black(shot, *MONITORS[1][:2], 2304, 768)


def test_without_opengl_the_display_falls_back_to_gtksink(
    screen_without_gl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", screen_without_gl)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = DisplaySink(320, 180, DisplaySettings(fullscreen=True))
    box = letterboxed(320, 180, 0, 0, 1280, 800)
    try:
        assert sink.video_sink == "gtksink"
        shot = show_until(sink, quadrants(320, 180), screen_without_gl, box)
    finally:
        sink.close()
    assert_quadrants(shot, box)
    assert_black(shot, 0, 0, 1280, box[1] - BLEND)
    assert_black(shot, 0, box[3] + BLEND, 1280, 800)


def test_write_never_waits_for_the_window(
    two_monitors: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", two_monitors)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = DisplaySink(320, 180, DisplaySettings(monitor=1))
    image = quadrants(320, 180)
    # A frozen window process reads nothing: the pipe to it fills after a frame or two.
    os.kill(sink.window_process.pid, signal.SIGSTOP)
    try:
        writer = threading.Thread(
            target=lambda: [sink.write(Frame(image, i, 0, i, "or1")) for i in range(60)]
        )
        writer.start()
        writer.join(10)
        assert not writer.is_alive(), "write() waited for the window"
    finally:
        os.kill(sink.window_process.pid, signal.SIGCONT)
        sink.close()
    assert sink.window_process.returncode == 0


def test_losing_the_x_server_ends_the_display_with_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = xvfb(tmp_path)
    monkeypatch.setenv("DISPLAY", next(server))
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = DisplaySink(320, 180, DisplaySettings(fullscreen=True))
    image = quadrants(320, 180)
    sink.write(Frame(image, 0, 0, 0, "or1"))
    server.close()  # the X server goes, as when the display PC's session restarts
    with pytest.raises(OrstreamError, match=r"^display: the window process ended \(status 1\)$"):
        for index in range(1, 500):
            sink.write(Frame(image, index * 40_000_000, 0, index, "or1"))
            time.sleep(0.01)
    sink.close()  # and this process, which records and serves, carries on


def test_a_monitor_that_is_not_there_is_one_clear_error_listing_those_that_are(
    two_monitors: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", two_monitors)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OrstreamError) as caught:
        DisplaySink(320, 180, DisplaySettings(fullscreen=True, monitor=2))
    assert str(caught.value) == (
        f"display: there is no monitor 2 on {two_monitors}; its monitors: "
        "0 DUMMY0 1280x800+0+0 primary, 1 DUMMY1 1024x768+1280+0"
    )
    with pytest.raises(OrstreamError, match="monitor -1 is not a monitor"):
        DisplaySettings(monitor=-1)


def test_display_without_a_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OrstreamError, match="no display to show video on"):
        DisplaySink(64, 48, DisplaySettings())


def test_display_that_cannot_be_opened_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OrstreamError, match=r"cannot open the window system \(DISPLAY=:987\)"):
        DisplaySink(64, 48, DisplaySettings(fullscreen=True))
