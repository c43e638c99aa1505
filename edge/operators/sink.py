"""A sink of one stream as an operator: recording, RTSP output, display, memory.

The sink opens on the first frame (its size comes from the frame) and takes every frame of
``video``; a sink people watch (the display, the RTSP output) is also connected to the
overlay's ``no_signal`` frames. Each sink has its own queue and thread, so a sink that stalls
or fails holds up neither the other sinks nor the source: on a live path its queue drops its
oldest frames (counted).

A sink that fails (a full disk, a network gone) is closed at once, so what it wrote is
finished (a recording plays up to that point), and marked failed with the reason (status,
metrics, the log); the video and inference go on for the other sinks. When the stream's frame
size changes mid-stream, a sink that takes any size (a recording: a new segment) gets the
frames as they are; the others (an RTSP output, a display: their viewers keep one stream) get
them scaled to the size they opened with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.streams.frame import Frame
from orstream.streams.sinks.sink import Sink

log = logging.getLogger(__name__)

SinkOpener = Callable[[int, int, float], Sink]
"""``(width, height, fps) -> Sink``."""


class SinkOp(Operator):
    """Writes one stream's frames to one sink.

    Args:
        stream_id: the stream.
        kind: what the sink is (``record``, ``rtsp``, ``display``, ``memory``, ...).
        open: makes the sink once the first frame gives the size.
        fps: the stream's nominal frame rate (for the sink's caps).
        video_path: where the time from a frame's capture to its write goes (the stream's
            video path latency), shared by the stream's sinks.
        any_size: the sink takes frames of any size (else they are scaled to its first size).
        name: the operator's name (default ``<stream>.sink.<kind>``).
    """

    def __init__(
        self,
        stream_id: str,
        kind: str,
        open: SinkOpener,
        fps: float,
        video_path: StageMeter | None = None,
        any_size: bool = False,
        name: str | None = None,
    ) -> None:
        self.any_size = any_size
        self.size: tuple[int, int] | None = None
        self.stream_id = stream_id
        self.kind = kind
        self.opener = open
        self.fps = fps
        self.video_path = video_path
        self.sink: Sink | None = None
        self.made: Sink | None = None
        """The sink last opened, kept after it is closed (what it wrote, for the report)."""
        self.written = 0
        super().__init__(name or f"{stream_id}.sink.{kind}")

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("video", capacity=8, policy="drop_oldest")
        spec.input("no_signal", capacity=1, policy="latest")

    def compute(self, received: Received) -> None:
        for frame in received["video"]:
            self._write(frame)
            self.written += 1
            if self.video_path is not None:
                self.video_path.record_since(frame.capture_ns)
        for frame in received["no_signal"]:
            self._write(frame)

    def _write(self, frame: Frame) -> None:
        started = time.monotonic_ns()
        height, width = frame.image.shape[:2]
        if self.sink is None:
            self.sink = self.made = self.opener(width, height, self.fps)
            self.size = (width, height)
        elif (width, height) != self.size and not self.any_size:
            assert self.size is not None
            image = cv2.resize(np.asarray(frame.image), self.size, interpolation=cv2.INTER_AREA)
            frame = replace(frame, image=image)
        try:
            self.sink.write(frame)
        except Exception:
            self._close_failed()
            raise
        self.meter.record_since(started)

    def _close_failed(self) -> None:
        """Finish what a failing sink wrote, now (its own error is what the status says)."""
        sink, self.sink = self.sink, None
        self.size = None
        try:
            if sink is not None:
                sink.close()
        except Exception as error:  # the write's error is the one reported
            log.warning("%s: closing after a failure: %s", self.name, error)

    def on_stop(self) -> None:
        if self.sink is not None:
            self.sink.close()
