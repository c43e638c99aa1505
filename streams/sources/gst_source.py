"""Frames from files, RTSP, RTP over UDP, V4L2 cameras and test patterns, decoded by GStreamer.

:class:`GstSource` builds one pipeline per URI, ``<source> ! videoconvert ! RGB ! appsink``,
and pulls samples from the appsink with a short timeout, so the bus is watched for errors
while frames flow and :meth:`GstSource.close` from another thread ends ``frames()`` promptly.

How frames are paced depends on the source:

* Files play as fast as they decode (``realtime=False``): the appsink neither syncs nor drops,
  its small queue blocks the decoder, so every frame of the file is delivered. With
  ``realtime=True`` the appsink syncs to the pipeline clock and frames come at the file's pace.
* Live sources (RTSP, UDP, V4L2, test patterns) come at their own pace; the appsink keeps at
  most ``LIVE_QUEUE`` frames and drops the oldest, so a slow consumer never builds a backlog.

``pts_ns`` is the source's own timestamp (GStreamer stream time), counted from the first
frame, so for a file it is the file's timestamps. ``discontinuity`` is set on a frame that
GStreamer flags DISCONT (after packet loss or a reconnect), whose pts goes backwards, or that
follows a gap of more than a second.

A file is checked with :func:`~orstream.streams.sources.video_file.probe_video` when the source is
made, so a missing, non-video, damaged or truncated file (an MP4 cut short, with or without its
index) fails at once with one clear line, before any frame, exactly as with the PyAV source.
GStreamer alone cannot promise that: its demuxer may stop on such a file without any error
reaching the bus (the error is swallowed while the decoder is still being set up), and the
source would only see that no frame came.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.gst_init import Gst, drain_bus, error_line, require_elements
from orstream.streams.sources.open_source import uri_params
from orstream.streams.sources.video_file import VideoInfo, probe_video

GST_SCHEMES = ("file", "rtsp", "udp", "v4l2", "videotestsrc")
"""URI schemes :class:`GstSource` plays (a plain path is a file)."""

POLL_NS = 100_000_000
"""How long one pull waits for a sample before the bus and ``close()`` are checked again."""

FILE_QUEUE = 4
"""Frames the appsink holds for a file before the decoder waits (backpressure, no drops)."""

LIVE_QUEUE = 4
"""Frames the appsink holds for a live source before it drops the oldest."""

GAP_NS = 1_000_000_000
"""A pts step larger than this marks the next frame as a discontinuity."""

RTSP_LATENCY_MS = 100
"""Jitter-buffer latency for RTSP and RTP: enough for a LAN, small for a live display."""


class GstSource:
    """A GStreamer source of RGB :class:`Frame` objects.

    Args:
        uri: a file path or ``file:///...``, ``rtsp://host:port/path`` (over TCP),
            ``udp://HOST:PORT[?payload=96]`` (RTP H.264 with in-band SPS/PPS, received on
            HOST:PORT), ``v4l2:///dev/videoN``, or
            ``videotestsrc://[?pattern=ball&width=W&height=H&fps=F&frames=N]`` (live).
        stream_id: the ``stream_id`` of every frame.
        realtime: play a file at its own pace rather than as fast as possible (live sources
            always come at their own pace).
        open_timeout_s: how long ``frames()`` waits for the first frame before it fails.
        stall_timeout_s: how long a live source may deliver nothing before ``frames()`` fails.

    Attributes:
        info: what :func:`probe_video` found in a file (None for live sources).

    Raises:
        OrstreamError: the URI is malformed or names an unknown scheme, a missing device, or a
            file that is missing, not a video, damaged or truncated.
    """

    def __init__(
        self,
        uri: str | Path,
        stream_id: str = "cam0",
        realtime: bool = False,
        open_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
    ) -> None:
        self.uri = str(uri)
        self.stream_id = stream_id
        self.realtime = realtime
        self.open_timeout_s = open_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self._plan = _plan(self.uri)
        self.live = self._plan.live
        self.name = self._plan.name
        self.info: VideoInfo | None = probe_video(self.name) if not self.live else None
        self._closed = threading.Event()
        self._no_video = threading.Event()
        self._lock = threading.Lock()
        self._pipeline: Gst.Pipeline | None = None

    def close(self) -> None:
        """Stop the source; a running ``frames()`` returns within a fraction of a second."""
        self._closed.set()
        with self._lock:
            if self._pipeline is not None:
                self._pipeline.set_state(Gst.State.NULL)

    def frames(self) -> Iterator[Frame]:
        """Deliver frames until the stream ends or :meth:`close` is called.

        Raises:
            OrstreamError: the source cannot be opened or played, delivers nothing within
                ``open_timeout_s``, or (live) stalls for ``stall_timeout_s``.
        """
        if self._closed.is_set():
            return
        pipeline = self._build()
        with self._lock:
            self._pipeline = pipeline
        try:
            yield from self._play(pipeline)
        finally:
            with self._lock:
                self._pipeline = None
            pipeline.set_state(Gst.State.NULL)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def _build(self) -> Gst.Pipeline:
        if self.live:
            sink = f"appsink name=sink sync=false max-buffers={LIVE_QUEUE} drop=true"
        else:
            sync = "true" if self.realtime else "false"
            sink = f"appsink name=sink sync={sync} max-buffers={FILE_QUEUE} drop=false"
        tail = f"videoconvert name=convert ! video/x-raw,format=RGB ! {sink}"
        # A decoder's pads appear once it knows the streams; _link_video links them then.
        joint = " " if self._plan.decoded else " ! "
        try:
            pipeline = Gst.parse_launch(self._plan.head + joint + tail)
        except Exception as error:  # GLib.Error: a missing plugin or a bad parameter
            raise OrstreamError(f"{self.name}: cannot build a pipeline ({error})") from None
        for element_name, values in self._plan.settings.items():
            element = pipeline.get_by_name(element_name)
            for key, value in values.items():
                element.set_property(key, value)
        if self._plan.decoded:
            self._no_video.clear()
            decode = pipeline.get_by_name("decode")
            video_pad = pipeline.get_by_name("convert").get_static_pad("sink")
            decode.connect("pad-added", _link_video, video_pad)
            decode.connect("no-more-pads", self._check_video, video_pad)
            if urlsplit(self.uri).scheme == "rtsp":
                decode.connect("source-setup", self._setup_rtsp)
        return pipeline

    def _check_video(self, _decode: Gst.Element, video_pad: Gst.Pad) -> None:
        """All streams are known: remember when none of them was video."""
        if not video_pad.is_linked():
            self._no_video.set()

    def _setup_rtsp(self, _decode: Gst.Element, source: Gst.Element) -> None:
        """Configure the ``rtspsrc`` that ``uridecodebin`` made: TCP, small latency, timeouts."""
        Gst.util_set_object_arg(source, "protocols", "tcp")
        source.set_property("latency", RTSP_LATENCY_MS)
        source.set_property("drop-on-latency", True)
        # Timestamps from RTP alone: the sender's timing, not smoothed towards arrival times.
        Gst.util_set_object_arg(source, "buffer-mode", "none")
        source.set_property("tcp-timeout", int(self.open_timeout_s * 1_000_000))

    def _play(self, pipeline: Gst.Pipeline) -> Iterator[Frame]:
        bus = pipeline.get_bus()
        sink = pipeline.get_by_name("sink")
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            error = drain_bus(bus)
            if error is None:
                raise OrstreamError(f"{self.name}: cannot start")
            raise self._error(error, pipeline, 0)
        started_ns = last_ns = time.monotonic_ns()
        first_pts = previous_pts = 0
        index = 0
        while not self._closed.is_set():
            error = drain_bus(bus)
            if error is not None:
                raise self._error(error, pipeline, index)
            if self._no_video.is_set():
                raise OrstreamError(f"{self.name}: has no video stream")
            sample = sink.try_pull_sample(POLL_NS)
            now_ns = time.monotonic_ns()
            if sample is None:
                if self._closed.is_set():
                    return
                if sink.is_eos():
                    error = drain_bus(bus)
                    if error is not None:
                        raise self._error(error, pipeline, index)
                    if index == 0:
                        raise OrstreamError(f"{self.name}: the stream ended without a frame")
                    return
                if index == 0 and now_ns - started_ns > self.open_timeout_s * 1e9:
                    raise OrstreamError(
                        f"{self.name}: no video arrived within {self.open_timeout_s:g} s"
                    )
                if self.live and index and now_ns - last_ns > self.stall_timeout_s * 1e9:
                    raise OrstreamError(
                        f"{self.name}: no video for {self.stall_timeout_s:g} s (stream stalled)"
                    )
                continue
            buffer = sample.get_buffer()
            pts = _stream_time(sample, buffer, now_ns)
            if index == 0:
                first_pts = previous_pts = pts
            discontinuity = index > 0 and (
                buffer.has_flags(Gst.BufferFlags.DISCONT)
                or pts < previous_pts
                or pts - previous_pts > GAP_NS
            )
            yield Frame(
                image=_rgb_image(sample, buffer),
                pts_ns=pts - first_pts,
                capture_ns=now_ns,
                index=index,
                stream_id=self.stream_id,
                discontinuity=discontinuity,
            )
            previous_pts = pts
            last_ns = now_ns
            index += 1

    def _error(self, message: Gst.Message, pipeline: Gst.Pipeline, index: int) -> OrstreamError:
        """One clear line for an ERROR message from the pipeline."""
        text = error_line(message)
        # Streams nobody links stop with not-linked, which can come before no-more-pads.
        video_pad = pipeline.get_by_name("convert").get_static_pad("sink")
        if index == 0 and "not-linked" in text and not video_pad.is_linked():
            return OrstreamError(f"{self.name}: has no video stream")
        return OrstreamError(f"{self.name}: {text}")


def _link_video(_decode: Gst.Element, pad: Gst.Pad, video_pad: Gst.Pad) -> None:
    """Link the decoder's first raw video pad to the converter; other streams stay unused."""
    caps = pad.get_current_caps() or pad.query_caps(None)
    if not video_pad.is_linked() and caps.get_structure(0).get_name() == "video/x-raw":
        pad.link(video_pad)


def _stream_time(sample: Gst.Sample, buffer: Gst.Buffer, now_ns: int) -> int:
    """The buffer's position in the stream (its own clock), or the arrival time if unstamped."""
    if buffer.pts == Gst.CLOCK_TIME_NONE:
        return now_ns
    position = sample.get_segment().to_stream_time(Gst.Format.TIME, buffer.pts)
    return buffer.pts if position == Gst.CLOCK_TIME_NONE else position


def _rgb_image(sample: Gst.Sample, buffer: Gst.Buffer) -> np.ndarray:
    """The sample as a contiguous, read-only HxWx3 uint8 array, copied out of GStreamer once.

    Read-only: a frame is shared by everything downstream (the overlay draws on a copy of its
    own, the models read it), so no consumer may change it under another.
    """
    structure = sample.get_caps().get_structure(0)
    width = structure.get_value("width")
    height = structure.get_value("height")
    ok, mapped = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise OrstreamError("cannot read a decoded frame (GStreamer buffer map failed)")
    try:
        data = mapped.data  # a copy of the mapped bytes, owned by Python
    finally:
        buffer.unmap(mapped)
    stride = len(data) // height
    rows = np.frombuffer(data, np.uint8, count=stride * height).reshape(height, stride)
    if stride == width * 3:
        return rows.reshape(height, width, 3)
    # Rows of packed RGB are padded to a multiple of 4 bytes: a second copy drops the padding.
    image = rows[:, : width * 3].reshape(height, width, 3).copy()
    image.flags.writeable = False
    return image


@dataclass(frozen=True)
class _Plan:
    """How to play a URI.

    Attributes:
        head: the pipeline up to raw video (``gst-launch`` syntax).
        decoded: the head ends in a decoder named ``decode`` whose pads appear later.
        settings: element name -> properties set after parsing; user-given strings (paths,
            URLs, devices) go here, never into ``head``, so no quoting can break it.
        live: the source runs at its own pace.
        name: how errors name the source.
    """

    head: str
    decoded: bool
    settings: dict[str, dict[str, object]]
    live: bool
    name: str


def _plan(uri: str) -> _Plan:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        path = Path(unquote(parts.path) if scheme == "file" else uri).expanduser().resolve()
        settings: dict[str, dict[str, object]] = {"decode": {"uri": path.as_uri()}}
        return _Plan("uridecodebin name=decode", True, settings, False, str(path))
    if scheme == "rtsp":
        require_elements("RTSP input", "rtspsrc")
        if not parts.hostname:
            raise OrstreamError(f"{uri}: an RTSP URL needs a host (rtsp://host:port/path)")
        return _Plan("uridecodebin name=decode", True, {"decode": {"uri": uri}}, True, uri)
    if scheme == "udp":
        return _udp_plan(uri)
    if scheme == "v4l2":
        require_elements("V4L2 input", "v4l2src")
        device = Path(parts.path)
        if not device.exists():
            raise OrstreamError(f"{uri}: no such device {device}")
        head = "v4l2src name=camera ! decodebin name=decode"
        return _Plan(head, True, {"camera": {"device": str(device)}}, True, uri)
    if scheme == "videotestsrc":
        return _Plan(_test_pattern_head(uri), False, {}, True, uri)
    raise OrstreamError(
        f"{uri}: unknown URI scheme '{scheme}' (GStreamer sources play: "
        f"{', '.join(GST_SCHEMES)}, or a plain file path)"
    )


def _udp_plan(uri: str) -> _Plan:
    require_elements("RTP/UDP input", "udpsrc", "rtpjitterbuffer", "rtph264depay", "h264parse")
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port:
        raise OrstreamError(f"{uri}: a UDP source needs udp://HOST:PORT (e.g. udp://0.0.0.0:5000)")
    payload = uri_params(uri, {"payload": int}).get("payload", 96)
    caps = (
        f"application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload={int(payload)}"
    )
    head = (
        f'udpsrc name=udp caps="{caps}" ! rtpjitterbuffer latency={RTSP_LATENCY_MS} '
        "drop-on-latency=true mode=none ! rtph264depay ! h264parse ! decodebin name=decode"
    )
    return _Plan(head, True, {"udp": {"address": parts.hostname, "port": port}}, True, uri)


def _test_pattern_head(uri: str) -> str:
    params = uri_params(
        uri, {"pattern": str, "width": int, "height": int, "fps": int, "frames": int}
    )
    pattern = str(params.get("pattern", "ball"))
    nicks = _enum_nicks("videotestsrc", "pattern")
    if pattern not in nicks:
        raise OrstreamError(f"{uri}: unknown pattern '{pattern}' (one of: {', '.join(nicks)})")
    width, height, fps = (
        int(params.get(k, d)) for k, d in (("width", 320), ("height", 240), ("fps", 30))
    )
    frames = int(params.get("frames", -1))
    if min(width, height, fps) < 1:
        raise OrstreamError(f"{uri}: width, height and fps must be positive")
    return (
        f"videotestsrc is-live=true pattern={pattern} num-buffers={frames} ! "
        f"video/x-raw,width={width},height={height},framerate={fps}/1"
    )


def _enum_nicks(factory: str, prop: str) -> list[str]:
    """The names an enum property of a GStreamer element accepts."""
    default = Gst.ElementFactory.make(factory, None).get_property(prop)
    return [value.value_nick for value in type(default).__enum_values__.values()]
