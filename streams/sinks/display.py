"""Showing frames in a window on the local display (X11 or Wayland) with GStreamer."""

from __future__ import annotations

import os

from orstream.errors import OrstreamError
from orstream.streams.gst_init import Gst
from orstream.streams.sinks.appsrc import AppSrcSink

QUEUE_FRAMES = 2
"""Frames queued for the window; beyond that the oldest are dropped (a display shows now)."""

WINDOW_SINKS = {
    "WAYLAND_DISPLAY": ("waylandsink", "glimagesink"),
    "DISPLAY": ("glimagesink", "xvimagesink", "ximagesink"),
}
"""Video sinks that open a window, best first, for each kind of display."""


class DisplaySink(AppSrcSink):
    """A window showing each written frame as soon as it arrives.

    The window sink is chosen as ``autovideosink`` would, by opening the display with each
    candidate in turn, but among window sinks only: ``autovideosink`` falls back to a sink that
    shows nothing (or to console sinks such as DirectFB) when no window can be opened, and a
    display that silently shows nothing is worse than a clear error.

    ``write()`` never blocks; when the window falls behind, the oldest frames are dropped.

    Args:
        width: frame width.
        height: frame height.

    Raises:
        OrstreamError: no display (neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set), or no
            window can be opened on it.
    """

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            name="display",
            tail=f"videoconvert ! {window_sink()} sync=false",
            settings={},
            width=width,
            height=height,
            fps=0.0,
            keep_every_frame=False,
            queue_frames=QUEUE_FRAMES,
        )


def window_sink() -> str:
    """The first video sink that can open a window on this session's display.

    Raises:
        OrstreamError: no display is set, or none of the window sinks can open it.
    """
    displays = [(var, os.environ[var]) for var in WINDOW_SINKS if os.environ.get(var)]
    if not displays:
        raise OrstreamError(
            "display: no display to show video on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "use an RTSP output or a recording instead"
        )
    tried = []
    for variable, _ in displays:
        for factory in WINDOW_SINKS[variable]:
            element = Gst.ElementFactory.make(factory, None)
            if element is None:
                continue
            tried.append(factory)
            # READY opens the display connection; it fails at once when there is none.
            opened = element.set_state(Gst.State.READY) != Gst.StateChangeReturn.FAILURE
            element.set_state(Gst.State.NULL)
            if opened:
                return factory
    shown = ", ".join(f"{var}={value}" for var, value in displays)
    raise OrstreamError(
        f"display: cannot open a window on {shown} (tried {', '.join(tried) or 'no sinks'})"
    )
