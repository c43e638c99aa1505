"""Feeding RGB frames into a GStreamer pipeline a sink owns.

:class:`AppSrcSink` is the common part of the GStreamer sinks that own their pipeline (the MP4
recorder, the display): ``appsrc ! <what the sink does>``, with the frames' own timestamps as
buffer pts, the bus checked on every write, and a bounded wait for end-of-stream on close.
"""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.gst_init import Gst, drain_bus, error_line

ROOM_POLL_S = 0.002
"""How often a sink that keeps every frame looks for room in its queue (and at its bus)."""

STUCK_S = 10.0
"""A pipeline that takes no frame for this long has failed without saying so."""

CLOSE_TIMEOUT_S = 10.0
"""How long :meth:`AppSrcSink.close` waits for the pipeline to finish (e.g. an MP4's index)."""


def rgb_caps(width: int, height: int, fps: float) -> Gst.Caps:
    """Caps of packed RGB frames of a size and rate."""
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(0)
    return Gst.Caps.from_string(
        f"video/x-raw,format=RGB,width={width},height={height},"
        f"framerate={rate.numerator}/{rate.denominator}"
    )


def rgb_buffer(sink_name: str, frame: Frame, width: int, height: int) -> Gst.Buffer:
    """A frame's image as a GStreamer buffer of packed RGB (rows padded to 4 bytes).

    Raises:
        OrstreamError: the image is not ``height x width x 3`` uint8.
    """
    image = np.asarray(frame.image)
    if image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise OrstreamError(
            f"{sink_name}: frame {frame.index} is {image.dtype} {image.shape}, "
            f"expected uint8 ({height}, {width}, 3)"
        )
    row = width * 3
    stride = (row + 3) & ~3
    if stride != row:
        padded = np.zeros((height, stride), np.uint8)
        padded[:, :row] = image.reshape(height, row)
        image = padded
    return Gst.Buffer.new_wrapped(np.ascontiguousarray(image).tobytes())


class AppSrcSink:
    """Frames pushed into ``appsrc ! <tail>``, a pipeline the sink owns.

    Buffer pts are the frames' ``pts_ns`` counted from the first frame written, so a recording
    keeps the source's timing. When a source's pts jumps back (it restarted), the frame goes
    one frame after the previous one and the source's timing continues from there.

    Args:
        name: the sink's name (errors start with it).
        tail: the pipeline after the appsrc (``gst-launch`` syntax).
        settings: element name -> properties set on elements of ``tail`` before playing; paths
            and other user-given strings go here rather than into ``tail``, so no quoting can
            break it.
        width: frame width.
        height: frame height.
        fps: nominal frame rate (caps and frame duration).
        keep_every_frame: block ``write()`` when the pipeline is more than ``queue_frames``
            behind (no frame lost, memory bounded); otherwise drop the oldest queued frames.
        queue_frames: how many frames the appsrc queues.
    """

    def __init__(
        self,
        name: str,
        tail: str,
        settings: dict[str, dict[str, object]],
        width: int,
        height: int,
        fps: float,
        keep_every_frame: bool,
        queue_frames: int,
    ) -> None:
        self.name = name
        self.width = width
        self.height = height
        self.frame_ns = round(1e9 / fps) if fps > 0 else 0
        self.written = 0
        leaky = "none" if keep_every_frame else "downstream"
        self._keep_every_frame = keep_every_frame
        self._queue_frames = queue_frames
        # Never block=true: a pipeline that failed downstream (a full disk) stops taking
        # buffers, and a blocked push would never return to see its error.
        description = (
            f"appsrc name=src format=time block=false leaky-type={leaky} "
            f"max-buffers={queue_frames} max-bytes=0 ! {tail}"
        )
        try:
            self._pipeline = Gst.parse_launch(description)
        except Exception as error:  # GLib.Error: a missing plugin or a bad parameter
            raise OrstreamError(f"{name}: cannot build a pipeline ({error})") from None
        for element_name, values in settings.items():
            element = self._pipeline.get_by_name(element_name)
            for key, value in values.items():
                element.set_property(key, value)
        self._src = self._pipeline.get_by_name("src")
        self._src.set_property("caps", rgb_caps(width, height, fps))
        self._bus = self._pipeline.get_bus()
        self._lock = threading.Lock()
        self._closed = False
        self._offset: int | None = None
        self._last_pts = -1
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self._fail("cannot start")

    def write(self, frame: Frame) -> None:
        """Queue one frame (ignored once the sink is closed).

        Raises:
            OrstreamError: the frame has the wrong size, or the pipeline failed.
        """
        buffer = rgb_buffer(self.name, frame, self.width, self.height)
        with self._lock:
            if self._closed:
                return
            if self._offset is None:
                self._offset = frame.pts_ns
            pts = frame.pts_ns - self._offset
            if pts <= self._last_pts:
                pts = self._last_pts + max(self.frame_ns, 1)
                self._offset = frame.pts_ns - pts
            self._last_pts = pts
            buffer.pts = pts
            buffer.duration = self.frame_ns or Gst.CLOCK_TIME_NONE
            error = drain_bus(self._bus)
            if error is not None:
                self._fail_with(error)
            if self._keep_every_frame:
                self._wait_for_room()
            if self._src.push_buffer(buffer) != Gst.FlowReturn.OK:
                self._fail("stopped taking frames")
            self.written += 1

    def _wait_for_room(self) -> None:
        """Wait while ``queue_frames`` frames are queued, watching the bus: an error ends the
        wait (raised), and so does a pipeline that stopped taking frames for ``STUCK_S``."""
        waited_s = 0.0
        while self._src.get_property("current-level-buffers") >= self._queue_frames:
            error = drain_bus(self._bus)
            if error is not None:
                self._fail_with(error)
            if waited_s > STUCK_S:
                self._fail(f"took no frame for {STUCK_S:g} s")
            time.sleep(ROOM_POLL_S)
            waited_s += ROOM_POLL_S

    def close(self) -> None:
        """Send end-of-stream and wait (bounded) until the pipeline has finished with it.

        Raises:
            OrstreamError: the pipeline failed or did not finish within ``CLOSE_TIMEOUT_S``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._src.end_of_stream()
            message = self._bus.timed_pop_filtered(
                int(CLOSE_TIMEOUT_S * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            if message is None:
                raise OrstreamError(f"{self.name}: did not finish within {CLOSE_TIMEOUT_S:g} s")
            if message.type == Gst.MessageType.ERROR:
                self._fail_with(message)
        finally:
            self._pipeline.set_state(Gst.State.NULL)

    def _fail(self, what: str) -> None:
        error = drain_bus(self._bus)
        if error is not None:
            self._fail_with(error)
        self._pipeline.set_state(Gst.State.NULL)
        raise OrstreamError(f"{self.name}: {what}")

    def _fail_with(self, message: Gst.Message) -> None:
        self._closed = True
        self._pipeline.set_state(Gst.State.NULL)
        raise OrstreamError(f"{self.name}: {error_line(message)}")
