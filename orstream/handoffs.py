"""Hand-offs: work an edge sends to the server tier, as the edge's outbox keeps it.

A hand-off is written to the edge's durable outbox first (its clip beside it), then sent to
the job service with its idempotency key and watched to its end; these types live in the core
because the edge, its gRPC conversions and its clients share them. A hand-off's ``result`` is
the server job's result (a JSON object whose meaning the job kind defines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orstream.errors import OrstreamError, quoted

HANDOFF_KIND = "handoff"
"""The subscription kind that carries hand-off updates (only to subscribers that name it)."""

HANDOFF_STATES = ("waiting", "accepted", "succeeded", "failed", "cancelled", "rejected")
"""``waiting``: in the outbox, not yet taken by the server (it may be down); ``accepted``: the
server holds it as a job, which is watched; ``succeeded``, ``failed``, ``cancelled``: how that
job ended; ``rejected``: the server refused it for good (e.g. an unknown kind), never resent."""

FINAL_HANDOFF_STATES = frozenset({"succeeded", "failed", "cancelled", "rejected"})
"""States a hand-off never leaves."""

ORIGINS = ("client", "auto")
"""Who asked: a gRPC client of the edge, or an automatic hand-off of the edge's config."""


@dataclass(frozen=True)
class HandOffItem:
    """One hand-off and where it stands. Times are seconds since the Unix epoch, 0 until
    they happen.

    Attributes:
        id: the outbox item's id.
        stream_id: the stream the clip was taken from.
        kind: the server job kind.
        seconds: the stream seconds asked for (the clip ends at the newest judged frame).
        params: the job kind's parameters.
        origin: ``client`` or ``auto``.
        idempotency_key: what the server knows the job by (resending it answers the same job).
        state: see :data:`HANDOFF_STATES`.
        frames: frames in the clip that was handed off.
        withheld_frames: frames of the window left out as private (out of patient, or not
            judged in patient).
        clip_bytes: size of the clip file.
        sends: times a send was tried (a submission or a watch that failed counts).
        last_error: why the last try failed (empty once it worked).
        job_id: the server's job (empty while waiting).
        job_state: the server job's state as last seen.
        job_attempts: times the server started the job.
        progress: 0..1 of the job's current attempt, and what it is doing.
        result: the job's result (succeeded only).
        error: why it failed, was cancelled or was rejected.
    """

    id: str
    stream_id: str
    kind: str
    seconds: float
    params: Mapping[str, str]
    origin: str
    idempotency_key: str
    state: str
    frames: int = 0
    withheld_frames: int = 0
    clip_bytes: int = 0
    sends: int = 0
    last_error: str = ""
    job_id: str = ""
    job_state: str = ""
    job_attempts: int = 0
    progress: float = 0.0
    progress_message: str = ""
    result: Mapping[str, Any] | None = None
    error: str = ""
    created_s: float = 0.0
    accepted_s: float = 0.0
    finished_s: float = 0.0

    def __post_init__(self) -> None:
        if self.state not in HANDOFF_STATES:
            raise OrstreamError(f"hand-off state {quoted(self.state)}: not one of {HANDOFF_STATES}")
        if self.origin not in ORIGINS:
            raise OrstreamError(f"hand-off origin {quoted(self.origin)}: not one of {ORIGINS}")
        if (self.result is not None) != (self.state == "succeeded"):
            raise OrstreamError(f"hand-off {self.id}: a result belongs to a succeeded one only")

    @property
    def final(self) -> bool:
        """Whether the hand-off is over (its job ended, or the server rejected it)."""
        return self.state in FINAL_HANDOFF_STATES


@dataclass(frozen=True)
class HandOffRequest:
    """What a client asks the edge to hand off: the last ``seconds`` of a stream as a job of
    ``kind`` (``stream_id`` may be empty when the edge runs one stream)."""

    kind: str
    stream_id: str = ""
    seconds: float = 0.0
    params: Mapping[str, str] = field(default_factory=dict)


ASK_KIND = "vlm"
"""The server job kind an ``Ask`` hands its clip and question to."""


@dataclass(frozen=True)
class AskRequest:
    """A question about the last ``seconds`` of a stream for the server tier's vision-language
    model (``stream_id`` may be empty when the edge runs one stream; ``max_new_tokens`` 0: the
    server's default; ``reasoning`` False asks for the answer alone)."""

    question: str
    stream_id: str = ""
    seconds: float = 0.0
    max_new_tokens: int = 0
    reasoning: bool = True

    def as_handoff(self) -> HandOffRequest:
        """The hand-off that carries it: kind ``vlm`` with the question as parameters."""
        params = {"question": self.question.strip()}
        if self.max_new_tokens:
            params["max_new_tokens"] = str(self.max_new_tokens)
        if not self.reasoning:
            params["reasoning"] = "false"
        return HandOffRequest(ASK_KIND, self.stream_id, self.seconds, params)


@dataclass(frozen=True)
class AnswerPiece:
    """The next piece of an ``Ask`` answer's text, of its job's ``attempt`` (a job run again
    after a server restart answers afresh, with a higher attempt)."""

    text: str
    attempt: int
