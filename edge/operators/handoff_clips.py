"""The hand-off clips of one stream as an operator: judged frames in, automatic hand-offs out.

It keeps the stream's :class:`~orstream.edge.outbox.clip_buffer.ClipBuffer` filled from the
stream's hand-off privacy gate, and runs the config's automatic hand-offs: every ``every_s``
seconds of the stream, its last ``seconds`` go to the outbox as a job of ``kind``. Time is the
stream's own, so a file played flat out hands off as often per stream minute as a live feed. A
hand-off refused (every frame private, the outbox full) is logged and counted; the stream goes
on, and the next one is tried at its time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.operators.privacy_gate import JudgedFrame
from orstream.edge.outbox.desk import HandOffDesk
from orstream.errors import OrstreamError
from orstream.handoffs import HandOffRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoHandOff:
    """Every ``every_s`` stream seconds, hand off the last ``seconds`` as a job of ``kind``."""

    kind: str
    every_s: float
    seconds: float
    params: Mapping[str, str] = field(default_factory=dict)


class HandOffClipsOp(Operator):
    """Fills one stream's clip buffer and hands off on the stream's schedule.

    Args:
        stream_id: the stream.
        desk: where hand-offs go (it holds the stream's buffer).
        schedule: the automatic hand-offs of this stream.
    """

    def __init__(
        self, stream_id: str, desk: HandOffDesk, schedule: tuple[AutoHandOff, ...] = ()
    ) -> None:
        self.stream_id = stream_id
        self.desk = desk
        self.buffer = desk.add_stream(stream_id)
        self.schedule = schedule
        self._due_ns: list[int | None] = [None] * len(schedule)
        self.handed_off = 0
        self.refused = 0
        super().__init__(f"{stream_id}.handoff_clips")

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("judged", capacity=64, policy="drop_oldest")

    def compute(self, received: Received) -> None:
        judged: JudgedFrame
        for judged in received["judged"]:
            started = time.monotonic_ns()
            self.buffer.add(judged.frame, judged.private)
            self.meter.record_since(started)
            self._due(judged.frame.pts_ns, judged.frame.discontinuity)

    def _due(self, pts_ns: int, restart: bool) -> None:
        """Hand off what is due at stream time ``pts_ns``."""
        for index, rule in enumerate(self.schedule):
            every_ns = int(rule.every_s * 1e9)
            due = self._due_ns[index]
            if due is None or restart or pts_ns < due - every_ns:
                self._due_ns[index] = pts_ns + every_ns
                continue
            if pts_ns < due:
                continue
            self._due_ns[index] = max(due + every_ns, pts_ns)
            request = HandOffRequest(rule.kind, self.stream_id, rule.seconds, rule.params)
            try:
                item = self.desk.hand_off(request, origin="auto")
            except OrstreamError as error:
                self.refused += 1
                log.warning(
                    "stream %s: automatic %s hand-off: %s", self.stream_id, rule.kind, error
                )
                continue
            self.handed_off += 1
            log.info("stream %s: %s hand-off %s in the outbox", self.stream_id, rule.kind, item.id)
