"""The display's window process: frames read from stdin, shown by GTK on the chosen monitor.

:class:`~orstream.streams.sinks.display.DisplaySink` runs this module as a process of its own
(``python -m orstream.streams.sinks.display_window WIDTH HEIGHT [--fullscreen] [--monitor
N]``), so the window system never shares a process with the video path: GTK runs on its
process's main thread, as it must, and when the X server or compositor goes away only this
process ends (GTK exits the process that held the display), not the one that records and
serves.

Protocol: stdin carries packed RGB frames of WIDTH x HEIGHT, rows padded to 4 bytes (GStreamer's
RGB layout), until EOF; stdout carries JSON lines: ``{"sink": ..., "monitor": ...}`` once the
window shows video, or ``{"error": ...}`` (one line, for the user) before exiting with status 1.

GTK makes the monitor choice real on both window systems: it lists the monitors of an X11
session (RandR outputs) or a Wayland one and opens a window full screen on any of them
(``fullscreen_on_monitor``). On X11 the window is also moved and sized to the monitor itself,
so it covers the monitor on a bare X server without a window manager (as OR display PCs often
run); a window manager or compositor that supports full screen does the same through the
request. Its video sinks scale each frame to their window keeping the frame's aspect ratio,
black bars above and below or on the sides (letterboxing), so a 16:9 endoscope on a 16:10 or
4:3 monitor fills its width or height, centred and undistorted. Two sinks are tried in order:

1. ``gtkglsink`` (in ``glsinkbin``): OpenGL converts and scales, so a 4K monitor costs the CPU
   nothing more than a small one;
2. ``gtksink``: cairo scales on the CPU; no OpenGL needed, so it shows video wherever GTK runs
   (an X server without GLX, a remote session).

Not ``autovideosink``: it falls back to sinks that show nothing when no window can be opened,
and a display that silently shows nothing is worse than a clear error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orstream.errors import OrstreamError
from orstream.streams.gst_init import GLib, Gst, error_line
from orstream.streams.sinks.display import DisplaySettings, session_name

VIDEO_SINKS = (
    ("gtkglsink", "glsinkbin sink=gtkglsink"),
    ("gtksink", "videoconvert ! gtksink"),
)
"""GStreamer GTK sinks, best first, with the chain each needs."""

WINDOW_TITLE = "orstream"


def main(argv: list[str] | None = None) -> int:
    """Show frames from stdin until EOF; 0 at EOF, 1 (and an ``error`` line) on failure."""
    parser = argparse.ArgumentParser(prog="python -m orstream.streams.sinks.display_window")
    parser.add_argument("width", type=int)
    parser.add_argument("height", type=int)
    parser.add_argument("--fullscreen", action="store_true")
    parser.add_argument("--monitor", type=int)
    args = parser.parse_args(argv)
    try:
        settings = DisplaySettings(fullscreen=args.fullscreen, monitor=args.monitor)
        gtk, gdk = _gtk()
        window, monitor = _open_window(gtk, gdk, settings, args.width, args.height)
        pipeline, sink = _show(window, args.width, args.height)
    except OrstreamError as error:
        _say(error=str(error))
        return 1
    _say(sink=sink, monitor=monitor)
    loop = GLib.MainLoop()
    ended: list[str] = []

    def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            ended.append(f"display: {error_line(message)}")
        loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message::eos", on_message)
    bus.connect("message::error", on_message)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    if ended:
        _say(error=ended[0])
        return 1
    return 0


def _say(**fields: str) -> None:
    print(json.dumps(fields), flush=True)


def _gtk() -> tuple[Any, Any]:
    """Gtk and Gdk 3, initialised on this session's display."""
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        gi.require_version("Gdk", "3.0")
        from gi.repository import Gdk, Gtk
    except (ValueError, ImportError):
        raise OrstreamError(
            "display: needs GTK 3 and its introspection data (gir1.2-gtk-3.0)"
        ) from None
    if Gdk.Display.get_default() is None:
        raise OrstreamError(f"display: cannot open the window system ({session_name()})")
    return Gtk, Gdk


def _open_window(
    gtk: Any, gdk: Any, settings: DisplaySettings, width: int, height: int
) -> tuple[Any, str]:
    """A GTK window on the chosen monitor (full screen, or the frame's size centred on it),
    and the monitor described."""
    index, monitor = _choose_monitor(gdk.Display.get_default(), settings.monitor)
    window = gtk.Window(title=WINDOW_TITLE)
    # The display belongs to the runtime: it closes with it, not from the window frame.
    window.connect("delete-event", lambda *_: True)
    if settings.fullscreen:
        geometry = monitor.get_geometry()
        window.set_decorated(False)
        window.move(geometry.x, geometry.y)
        window.set_default_size(geometry.width, geometry.height)
        window.fullscreen_on_monitor(window.get_screen(), index)
        window.connect("realize", _hide_pointer, gdk)
    else:
        area = monitor.get_workarea()
        scale = min(1.0, area.width / width, area.height / height)
        shown_w, shown_h = max(1, round(width * scale)), max(1, round(height * scale))
        window.set_default_size(shown_w, shown_h)
        window.move(area.x + (area.width - shown_w) // 2, area.y + (area.height - shown_h) // 2)
    return window, f"{index} {_describe(monitor)}"


def _show(window: Any, width: int, height: int) -> tuple[Gst.Pipeline, str]:
    """The first of :data:`VIDEO_SINKS` that starts, its widget in the window."""
    failures = []
    for factory, chain in VIDEO_SINKS:
        if Gst.ElementFactory.find(factory) is None:
            failures.append(f"{factory}: not installed")
            continue
        # A one-frame leaky queue: stdin is always read, whatever the window can take.
        pipeline = Gst.parse_launch(
            f"fdsrc fd=0 ! rawvideoparse format=rgb width={width} height={height} "
            "framerate=0/1 ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 "
            f"max-size-time=0 ! {chain} name=video sync=false force-aspect-ratio=true"
        )
        element = pipeline.get_by_name("video")
        sink = element.get_property("sink") if element.find_property("sink") else element
        widget = sink.get_property("widget")
        window.add(widget)
        window.show_all()
        if pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE:
            return pipeline, factory
        message = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        failures.append(f"{factory}: {error_line(message) if message else 'cannot start'}")
        pipeline.set_state(Gst.State.NULL)
        widget.destroy()
    raise OrstreamError(
        f"display: cannot show video on {session_name()} ({'; '.join(failures)}; "
        "gstreamer1.0-gtk3 has both sinks)"
    )


def _choose_monitor(display: Any, wanted: int | None) -> tuple[int, Any]:
    """The index and ``Gdk.Monitor`` asked for: ``wanted``, or the primary one for None."""
    monitors = [display.get_monitor(i) for i in range(display.get_n_monitors())]
    if wanted is None:
        primary = display.get_primary_monitor()
        index = next((i for i, m in enumerate(monitors) if m == primary), 0)
        return index, monitors[index]
    if wanted >= len(monitors):
        listed = ", ".join(f"{i} {_describe(m)}" for i, m in enumerate(monitors))
        raise OrstreamError(
            f"display: there is no monitor {wanted} on {display.get_name()}; its monitors: {listed}"
        )
    return wanted, monitors[wanted]


def _describe(monitor: Any) -> str:
    """A monitor as ``NAME WxH+X+Y``, plus ``primary`` for the primary one."""
    geometry = monitor.get_geometry()
    name = monitor.get_model() or "monitor"
    primary = " primary" if monitor.is_primary() else ""
    return f"{name} {geometry.width}x{geometry.height}+{geometry.x}+{geometry.y}{primary}"


def _hide_pointer(window: Any, gdk: Any) -> None:
    """No mouse pointer over a full-screen picture."""
    blank = gdk.Cursor.new_from_name(window.get_display(), "none")
    window.get_window().set_cursor(blank)


if __name__ == "__main__":
    sys.exit(main())
