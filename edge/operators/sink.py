"""A sink of one stream as an operator: recording, RTSP output, display, memory.

The sink opens on the first frame (its size comes from the frame) and takes every frame of
``video``; a sink people watch (the display, the RTSP output) is also connected to the
overlay's ``no_signal`` frames. Each sink has its own queue and thread, so a sink that stalls
or fails holds up neither the other sinks nor the source: on a live path its queue drops its
oldest frames (counted), and a failed sink is marked failed while the video goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.streams.frame import Frame
from orstream.streams.sinks.sink import Sink

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
        name: the operator's name (default ``<stream>.sink.<kind>``).
    """

    def __init__(
        self,
        stream_id: str,
        kind: str,
        open: SinkOpener,
        fps: float,
        video_path: StageMeter | None = None,
        name: str | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.kind = kind
        self.opener = open
        self.fps = fps
        self.video_path = video_path
        self.sink: Sink | None = None
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
        if self.sink is None:
            height, width = frame.image.shape[:2]
            self.sink = self.opener(width, height, self.fps)
        self.sink.write(frame)
        self.meter.record_since(started)

    def on_stop(self) -> None:
        if self.sink is not None:
            self.sink.close()
