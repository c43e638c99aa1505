"""GStreamer for orstream: loaded and initialised once, with what every pipeline needs.

Every orstream pipeline imports ``Gst`` from here, so ``gi.require_version`` and ``Gst.init``
happen in one place; ``GstApp`` is loaded with it, as appsrc and appsink get their push and
pull methods from it. Pipelines here run without a GLib main loop: their owners drain the bus
themselves (:func:`drain_bus`), which also keeps unread messages from piling up.
"""

from __future__ import annotations

import ctypes
import sys
from types import ModuleType

import gi

# libgstreamer links libunwind, whose _Unwind_* symbols then sit in the process's global scope;
# libraries loaded later (torch's JIT) can bind to them instead of libgcc_s's, and their C++
# exceptions abort the process. Loading libgcc_s globally first keeps its unwinder in front.
if sys.platform.startswith("linux"):
    ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp  # noqa: E402

from orstream.errors import OrstreamError  # noqa: E402

Gst.init(None)

__all__ = [
    "GLib",
    "Gst",
    "GstApp",
    "drain_bus",
    "error_line",
    "require_elements",
    "rtsp_server_module",
]


def require_elements(purpose: str, *names: str) -> None:
    """Raise :class:`OrstreamError` naming the missing GStreamer elements ``purpose`` needs."""
    missing = [name for name in names if Gst.ElementFactory.find(name) is None]
    if missing:
        raise OrstreamError(
            f"{purpose} needs the GStreamer element(s) {', '.join(missing)}, which are not "
            "installed (gstreamer1.0-plugins-good/-bad/-ugly, gstreamer1.0-libav)"
        )


def error_line(message: Gst.Message) -> str:
    """An ERROR message as one line: GStreamer's text and its most useful detail."""
    error, debug = message.parse_error()
    text = error.message.strip().rstrip(".")
    # The debug string starts with source locations; its last line is the human-readable cause.
    detail = (debug or "").strip().splitlines()[-1:] or [""]
    cause = detail[0].strip().rstrip(".")
    if cause and "/Gst" not in cause and cause.lower() not in text.lower():
        text = f"{text}: {cause}"
    return text


def drain_bus(bus: Gst.Bus) -> Gst.Message | None:
    """Pop every pending bus message; return the first ERROR among them (or None)."""
    error: Gst.Message | None = None
    while (message := bus.pop()) is not None:
        if message.type == Gst.MessageType.ERROR and error is None:
            error = message
    return error


def rtsp_server_module() -> ModuleType:
    """``GstRtspServer`` (gst-rtsp-server), loaded on first use so sources never need it."""
    try:
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer
    except (ValueError, ImportError):
        raise OrstreamError(
            "RTSP serving needs gst-rtsp-server and its GObject introspection data "
            "(gir1.2-gst-rtsp-server-1.0)"
        ) from None
    return GstRtspServer
