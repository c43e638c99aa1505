"""The first operator of every stream: frames from a source, into the graph."""

from __future__ import annotations

import time
from collections.abc import Iterator

from orstream.edge.graph.meters import RateMeter, StageMeter
from orstream.edge.graph.operator import OperatorSpec, SourceOperator
from orstream.errors import OrstreamError
from orstream.status import SourceStatus
from orstream.streams.frame import Frame
from orstream.streams.sources.source import Source


class SourceOp(SourceOperator):
    """Emits every frame of one stream's source on ``video`` (its own timestamps, index and
    discontinuity flag), measuring how long the source takes to hand each one over.

    A source that fails (an error while playing) fails this operator only: the stream ends, the
    other streams of the graph go on, and the status says why.

    Every frame's lag behind its own schedule is measured: how much later than its timestamp
    says (counted from the first frame) it entered orstream. A live camera never lags (it drops
    instead); a file played at its own pace lags when the runtime cannot keep up.

    Args:
        source: the stream's source; its ``stream_id`` names the stream.
        name: the operator's name (default ``<stream>.source``).
    """

    def __init__(self, source: Source, name: str | None = None) -> None:
        self.source = source
        self.stream_id = source.stream_id
        self.frames_in = 0
        self.rate = RateMeter()
        self.lag = StageMeter(f"{source.stream_id}.lag")
        self.source_state = "starting"
        self.interrupted = False
        self.start_after_s = 0.0
        """Wait this long before the first frame (benches give streams different phases, as
        independent cameras have)."""
        super().__init__(name or f"{source.stream_id}.source")

    def setup(self, spec: OperatorSpec) -> None:
        spec.output("video")

    def generate(self) -> None:
        if self.start_after_s > 0:
            time.sleep(self.start_after_s)
        frames = iter(self.source.frames())
        anchor: tuple[int, int] | None = None
        while True:
            asked = time.monotonic_ns()
            try:
                frame = next(frames, None)
            except OrstreamError:
                self.source_state = "failed"
                raise
            if frame is None:
                break
            # Decoding (or, live, waiting for the camera): what the source costs per frame.
            self.meter.record_since(asked)
            self.source_state = "playing"
            self.frames_in += 1
            self.rate.tick(frame.capture_ns)
            if anchor is None or frame.discontinuity:
                anchor = (frame.capture_ns, frame.pts_ns)
            self.lag.record(((frame.capture_ns - anchor[0]) - (frame.pts_ns - anchor[1])) / 1e6)
            self.emit("video", frame)
        self.source_state = "interrupted" if self.interrupted else "ended"

    def interrupt(self) -> None:
        """Stop the source (the run is being stopped): its stream ends as ``interrupted``."""
        self.interrupted = True
        self.source.close()

    def stream_status(self) -> SourceStatus:
        """The stream as ``GetStatus`` lists it."""
        state = "failed" if self.state == "failed" else self.source_state
        return SourceStatus(
            stream_id=self.stream_id,
            uri=self.source.uri,
            state=state,
            fps=self.rate.rate(),
            frames_in=self.frames_in,
            error=self.error,
        )

    @property
    def dropped(self) -> int:
        """Frames the source itself skipped (a live source no one kept up with)."""
        return int(getattr(self.source, "dropped", 0))


class UnavailableSource:
    """A stream whose source could not be opened: its operator fails at once with the reason,
    so the stream shows as failed in the status while the other streams run."""

    live = True

    def __init__(self, uri: str, stream_id: str, reason: str) -> None:
        self.uri = uri
        self.stream_id = stream_id
        self.reason = reason

    def frames(self) -> Iterator[Frame]:
        raise OrstreamError(self.reason)

    def close(self) -> None:
        pass
