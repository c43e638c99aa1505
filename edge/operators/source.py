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

    A watchdog reads the stream's state: a live stream without a frame for ``stalled_after_s``
    is ``stalled``, and one whose feed was lost is ``reconnecting`` until its source delivers
    again (:class:`~orstream.streams.sources.reconnecting.ReconnectingSource`).

    Args:
        source: the stream's source; its ``stream_id`` names the stream.
        stalled_after_s: silence after which a live stream is stalled.
        name: the operator's name (default ``<stream>.source``).
    """

    def __init__(
        self, source: Source, stalled_after_s: float = 1.0, name: str | None = None
    ) -> None:
        self.source = source
        self.stream_id = source.stream_id
        self.frames_in = 0
        self.rate = RateMeter()
        self.lag = StageMeter(f"{source.stream_id}.lag")
        self.source_state = "starting"
        self.stalled_after_s = stalled_after_s
        self.last_frame_ns = 0
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
            self.last_frame_ns = frame.capture_ns
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

    def stream_state(self) -> str:
        """``starting``, ``playing``, ``stalled``, ``reconnecting``, ``ended``, ``interrupted``
        or ``failed`` (see :class:`~orstream.status.SourceStatus`)."""
        if self.state == "failed":
            return "failed"
        state = self.source_state
        if state in ("ended", "interrupted"):
            return state
        if getattr(self.source, "last_error", "") and not getattr(self.source, "connected", True):
            return "reconnecting"
        silent_s = (time.monotonic_ns() - self.last_frame_ns) / 1e9
        if state == "playing" and self.source.live and silent_s > self.stalled_after_s:
            return "stalled"
        return state

    def stream_status(self) -> SourceStatus:
        """The stream as ``GetStatus`` lists it."""
        state = self.stream_state()
        error = self.error
        if state in ("reconnecting", "stalled"):
            error = getattr(self.source, "last_error", "") or "no frame for a while"
        return SourceStatus(
            stream_id=self.stream_id,
            uri=self.source.uri,
            state=state,
            fps=self.rate.rate() if state == "playing" else 0.0,
            frames_in=self.frames_in,
            error=error,
            reconnects=int(getattr(self.source, "reconnects", 0)),
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
