"""Showing frames on an operating-room monitor: full screen on a chosen monitor, or a window.

The frames go through a pipe to a window process of the display's own
(:mod:`orstream.streams.sinks.display_window`), which shows them with GTK 3 and a GStreamer
GTK sink, letterboxed to the monitor. The window system never shares a process with the video
path: GTK must run on its process's main thread, and ends the process that holds a display
when the display goes away, so an X server or compositor that restarts ends only the window
process, and the display's next ``write()`` raises one clear error.

``write()`` never blocks: frames queue in a small leaky queue before the pipe, so when the
window (or the pipe) falls behind, the oldest frames are dropped and the video path carries
on. Closing ends the stream and waits a bounded time for the window process to go.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.sinks.appsrc import AppSrcSink

QUEUE_FRAMES = 2
"""Frames queued for the window; beyond that the oldest are dropped (a display shows now)."""

START_TIMEOUT_S = 30.0
"""How long the window process may take to show its window (imports GTK and GStreamer)."""

EXIT_TIMEOUT_S = 5.0
"""How long a closed display waits for the window process before ending it."""


@dataclass(frozen=True)
class DisplaySettings:
    """Where and how the display shows video.

    Attributes:
        fullscreen: cover the whole monitor (no window frame, no pointer), the picture as
            large as fits, centred, black bars elsewhere; otherwise a window of the frame's
            size (smaller when the monitor is), centred on the monitor.
        monitor: which monitor, counted from 0 in the order the window system lists them
            (``xrandr --listmonitors`` on X11); None: the primary monitor. Wayland leaves a
            window's position to the compositor; full screen goes to the monitor asked for.
    """

    fullscreen: bool = False
    monitor: int | None = None

    def __post_init__(self) -> None:
        if self.monitor is not None and self.monitor < 0:
            raise OrstreamError(f"display: monitor {self.monitor} is not a monitor (0, 1, ...)")


class DisplaySink(AppSrcSink):
    """Frames shown on a monitor as :class:`DisplaySettings` ask, each as soon as it arrives.

    Args:
        width: frame width.
        height: frame height.
        settings: fullscreen or windowed, and on which monitor.

    Attributes:
        video_sink: the GStreamer sink showing the video (``gtkglsink`` or ``gtksink``).
        monitor: the monitor shown on, e.g. ``1 DUMMY1 1024x768+1280+0``.
        window_process: the window process.

    Raises:
        OrstreamError: no display (neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set), it
            cannot be opened, it has no such monitor (the message lists those it has), or no
            sink can show video on it.
    """

    def __init__(self, width: int, height: int, settings: DisplaySettings) -> None:
        session_name()  # no display at all: said here, before starting a process
        command = [sys.executable, "-m", "orstream.streams.sinks.display_window"]
        command += [str(width), str(height)]
        if settings.fullscreen:
            command.append("--fullscreen")
        if settings.monitor is not None:
            command += ["--monitor", str(settings.monitor)]
        read, self._pipe = os.pipe()
        try:
            # Unbuffered, so select() sees every status line the process writes.
            # A session of its own: Ctrl-C at a terminal stops the runtime, which then closes
            # the display, rather than the window behind the runtime's back.
            self.window_process = subprocess.Popen(
                command, stdin=read, stdout=subprocess.PIPE, bufsize=0, start_new_session=True
            )
        finally:
            os.close(read)
        status = self._status(START_TIMEOUT_S)
        if "error" in status:
            self._end_window()
            raise OrstreamError(status["error"])
        self.video_sink, self.monitor = status["sink"], status["monitor"]
        try:
            super().__init__(
                name="display",
                tail="fdsink name=pipe sync=false",
                settings={"pipe": {"fd": self._pipe}},
                width=width,
                height=height,
                fps=0.0,
                keep_every_frame=False,
                queue_frames=QUEUE_FRAMES,
            )
        except OrstreamError:
            self._end_window()
            raise

    def write(self, frame: Frame) -> None:
        """Queue one frame for the window (never waits; ignored once closed).

        Raises:
            OrstreamError: the frame has the wrong size, or the window process has ended
                (the message says why, when it could tell).
        """
        try:
            super().write(frame)
        except OrstreamError:
            if self.window_process.poll() is None:
                raise
            why = self._status(0.0)["error"]
            self._end_window()
            raise OrstreamError(why) from None

    def close(self) -> None:
        """End the stream and the window process (bounded; idempotent)."""
        try:
            super().close()
        finally:
            self._end_window()

    def _status(self, timeout_s: float) -> dict[str, str]:
        """The window process's next status line: what it shows, or why it stopped."""
        stdout = self.window_process.stdout
        assert stdout is not None
        ready = select.select([stdout], [], [], timeout_s)[0]
        line = stdout.readline() if ready else b""
        if line:
            status: dict[str, str] = json.loads(line)
            return status
        if not ready:
            return {"error": f"display: no window within {timeout_s:g} s"}
        return {"error": f"display: the window process ended (status {self.window_process.wait()})"}

    def _end_window(self) -> None:
        """Close the pipe (the window process ends at its end) and wait for it, bounded."""
        if self._pipe < 0:
            return
        os.close(self._pipe)
        self._pipe = -1
        try:
            self.window_process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.window_process.kill()
            self.window_process.wait()
        assert self.window_process.stdout is not None
        self.window_process.stdout.close()


def session_name() -> str:
    """The window system the environment names, e.g. ``DISPLAY=:0`` (GTK's choice first).

    Raises:
        OrstreamError: neither ``WAYLAND_DISPLAY`` nor ``DISPLAY`` is set.
    """
    for variable in ("WAYLAND_DISPLAY", "DISPLAY"):
        if os.environ.get(variable):
            return f"{variable}={os.environ[variable]}"
    raise OrstreamError(
        "display: no display to show video on (DISPLAY and WAYLAND_DISPLAY are unset); "
        "use an RTSP output or a recording instead"
    )
