"""A live RTSP output: frames encoded to H.264 and served by gst-rtsp-server to any client."""

from __future__ import annotations

import threading
from typing import Any

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.gst_init import Gst, require_elements
from orstream.streams.sinks.appsrc import rgb_buffer, rgb_caps
from orstream.streams.sinks.rtsp_server import RtspServer

QUEUE_FRAMES = 4
"""Frames queued for the encoder; beyond that the oldest are dropped (a live output)."""

DRIFT_NS = 500_000_000
"""When source timing and the server's clock drift apart by more than this, re-anchor."""


class RtspOutput:
    """Serves written frames as a live H.264 RTSP stream at ``rtsp://host:port/path``.

    All clients share one encoder, which runs only while someone watches: with no client,
    ``write()`` returns at once. Buffer pts follow the frames' ``pts_ns``, anchored to the
    server pipeline's clock when the first frame reaches it (and again whenever source timing
    and that clock drift apart, e.g. after a source restarts). ``write()`` never blocks: when
    the encoder falls behind, the oldest queued frames are dropped.

    Args:
        width: frame width (even).
        height: frame height (even).
        fps: nominal frame rate (keyframe interval: one per second, so clients join fast).
        port: TCP port for RTSP; 0 picks a free one.
        path: the URL path.
        host: address to listen on.
        server: serve from this server (shared by several outputs, a mount each) instead of
            one of the output's own on ``host:port``; closing the output then only unmounts.

    Attributes:
        url: the ``rtsp://`` URL clients open.
        sent: frames handed to the encoder so far.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        port: int = 8554,
        path: str = "/live",
        host: str = "127.0.0.1",
        server: RtspServer | None = None,
    ) -> None:
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise OrstreamError(f"RTSP output needs an even frame size, got {width}x{height}")
        require_elements("RTSP output", "appsrc", "x264enc", "rtph264pay")
        self.width = width
        self.height = height
        self.fps = fps
        self.sent = 0
        self._lock = threading.Lock()
        self._appsrc: Gst.Element | None = None
        self._anchor: tuple[int, int] | None = None  # (source pts, pipeline running time)
        self._last_pts = -1
        self._owns_server = server is None
        self._server = server if server is not None else RtspServer(port, host)
        self._path = path
        rtsp = self._server.rtsp
        factory = rtsp.RTSPMediaFactory.new()
        keyframe_interval = max(1, round(fps))
        factory.set_launch(
            f"( appsrc name=src is-live=true format=time block=false leaky-type=downstream "
            f"max-buffers={QUEUE_FRAMES} max-bytes=0 ! videoconvert ! video/x-raw,format=I420 ! "
            f"x264enc tune=zerolatency speed-preset=superfast key-int-max={keyframe_interval} ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_shared(True)
        factory.connect("media-configure", self._configure)
        try:
            self.url = self._server.mount(path, factory)
        except OrstreamError:
            if self._owns_server:
                self._server.close()
            raise
        self.name = f"rtsp:{self.url}"

    def write(self, frame: Frame) -> None:
        """Send one frame to the clients (dropped when nobody watches)."""
        with self._lock:
            appsrc = self._appsrc
        if appsrc is None:
            return
        now = appsrc.get_current_running_time()
        if now == Gst.CLOCK_TIME_NONE:
            return
        buffer = rgb_buffer(self.name, frame, self.width, self.height)
        with self._lock:
            # The last client may have left meanwhile; its pipeline is gone then.
            if self._appsrc is None:
                return
            pts = self._pts(frame.pts_ns, now)
        buffer.pts = pts
        buffer.duration = round(1e9 / self.fps) if self.fps > 0 else Gst.CLOCK_TIME_NONE
        if appsrc.push_buffer(buffer) == Gst.FlowReturn.OK:
            self.sent += 1

    def close(self) -> None:
        """Disconnect every client and stop serving."""
        with self._lock:
            self._appsrc = None
        if self._owns_server:
            self._server.close()
        else:
            self._server.unmount(self._path)

    def _pts(self, source_pts: int, now: int) -> int:
        """Running time for a frame: source timing from the anchor, re-anchored on drift."""
        if self._anchor is not None:
            pts = self._anchor[1] + source_pts - self._anchor[0]
            if abs(pts - now) <= DRIFT_NS and pts > self._last_pts:
                self._last_pts = pts
                return pts
        pts = max(now, self._last_pts + 1)
        self._anchor = (source_pts, pts)
        self._last_pts = pts
        return pts

    def _configure(self, _factory: Any, media: Any) -> None:
        """A client made the server build the pipeline: take its appsrc."""
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", rgb_caps(self.width, self.height, self.fps))
        media.connect("unprepared", self._forget)
        with self._lock:
            self._appsrc = appsrc
            self._anchor = None
            self._last_pts = -1

    def _forget(self, _media: Any) -> None:
        """The last client left and the pipeline is gone."""
        with self._lock:
            self._appsrc = None
