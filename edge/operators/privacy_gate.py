"""The privacy gate of one stream as an operator: what leaves the device waits to be judged.

A frame is judged by the recognizer's results on the frames either side of it: the last one
at or before it and the first one after it. It is private (withheld: blanked or blurred, with a
banner, :mod:`orstream.edge.overlay.privacy`) when either calls the view out of patient, by
its smoothed step or by its own probability of out of patient on that frame, and, failing
closed, before the stream's first result and when the last result before it is too old to
speak for it. Judging by the next result too is what catches a brief moment out of patient:
the smoothed step takes seconds to follow one, the frames just before the first result that
sees it are already drawn, and only a gate that waits can still hold them back.

So frames wait, on ``video``, until the next result has come or ``delay_s`` has passed (then
the last result alone judges them), at most ``max_held`` of them (the oldest are judged early
when more come). The recording and the RTSP output are ``delay_s`` behind the OR display, which
shows the picture at once and is not gated.

Each judged frame also goes out on ``judged`` as it came, with its judgement
(:class:`JudgedFrame`): what hand-offs to the server cut their clips from, leaving the private
frames out entirely rather than blanked. A gate that feeds only ``judged`` withholds no picture
(nobody would see it).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.overlay.privacy import PrivacyMode, calls_out_of_patient, withheld
from orstream.streams.frame import Frame


@dataclass(frozen=True)
class JudgedFrame:
    """A frame as it came to the gate, and whether the gate judged it private."""

    frame: Frame
    private: bool

    @property
    def stream_id(self) -> str:
        return self.frame.stream_id


@dataclass(frozen=True)
class _Call:
    """What one result said about the view: at the capture time of the frame it judged."""

    capture_ns: int
    private: bool


class PrivacyGateOp(Operator):
    """Withholds one stream's private frames from the sinks whose video leaves the device.

    Args:
        stream_id: the stream.
        mode: ``blank`` or ``blur``.
        result_interval_s: how often results are due (1 / the recognizer's rate).
        stale_after_ms: how far past its interval a result no longer speaks for a frame.
        delay_s: the longest a frame waits for the next result.
        max_held: frames held at most.
        name: the operator's name (default ``<stream>.privacy``).
    """

    idle_s = 0.05

    def __init__(
        self,
        stream_id: str,
        mode: PrivacyMode,
        result_interval_s: float,
        stale_after_ms: float = 250.0,
        delay_s: float = 2.0,
        max_held: int = 96,
        name: str | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.mode = mode
        self.stale_ns = int((result_interval_s + stale_after_ms / 1e3) * 1e9)
        self.delay_ns = int(delay_s * 1e9)
        self.max_held = max_held
        self.frames_withheld = 0
        self.frames_passed = 0
        self._held: deque[Frame] = deque()
        self._calls: deque[_Call] = deque()
        super().__init__(name or f"{stream_id}.privacy")

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("video", capacity=24, policy="drop_oldest")
        spec.input("results", capacity=64, policy="drop_oldest")
        spec.output("video")
        spec.output("judged")

    def compute(self, received: Received) -> None:
        for result in received["results"]:
            self._calls.append(_Call(result.capture_ns, calls_out_of_patient(result)))
        self._held.extend(received["video"])
        self._release(time.monotonic_ns(), flush=False)

    def on_idle(self) -> None:
        self._release(time.monotonic_ns(), flush=False)

    def on_stop(self) -> None:
        self._release(time.monotonic_ns(), flush=True)

    def _release(self, now_ns: int, flush: bool) -> None:
        """Judge and send on every held frame that can be judged now, oldest first."""
        while self._held:
            frame = self._held[0]
            before, after = self._around(frame.capture_ns)
            waited = now_ns - frame.capture_ns
            waiting = after is None and not flush and waited < self.delay_ns
            if waiting and len(self._held) <= self.max_held:
                return
            self._held.popleft()
            private = (
                before is None
                or before.private
                or frame.capture_ns - before.capture_ns > self.stale_ns
                or (after is not None and after.private)
            )
            started = time.monotonic_ns()
            self.emit("judged", JudgedFrame(frame, private))
            video = self.outputs["video"]
            if private:
                self.frames_withheld += 1
                if video.connections or video.taps:
                    frame = replace(frame, image=withheld(np.asarray(frame.image), self.mode))
            else:
                self.frames_passed += 1
            self.emit("video", frame)
            self.meter.record_since(started)
            self._forget_before(frame.capture_ns)

    def _around(self, capture_ns: int) -> tuple[_Call | None, _Call | None]:
        """The last call at or before ``capture_ns`` and the first after it."""
        before = after = None
        for call in self._calls:
            if call.capture_ns <= capture_ns:
                before = call
            else:
                after = call
                break
        return before, after

    def _forget_before(self, capture_ns: int) -> None:
        """Drop calls no held frame can need (the last one at or before ``capture_ns`` stays)."""
        while len(self._calls) > 1 and self._calls[1].capture_ns <= capture_ns:
            self._calls.popleft()
