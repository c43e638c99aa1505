"""Asking the server tier from the page: ``POST /api/ask`` hands the stream's recent clip (the
privacy gate applied) with the question to the server's ``vlm`` job kind through the edge's
outbox (:meth:`~orstream.edge.outbox.desk.HandOffDesk.ask`, what gRPC's ``Ask`` does) and
streams the item's changes and the answer's pieces back as server-sent events:

- ``event: item`` — the item as it is now (``id``, ``state``, ``sends``, ``last_error``,
  ``error``, ``frames``, ``withheld_frames``, ``job_state``), first at once, then at each change;
- ``event: piece`` — the next ``text`` of the answer as the server decodes it, of its job's
  ``attempt`` (a job run again after a server restart answers afresh, with a higher attempt).

The stream ends after the item's final state. A refusal comes before any event, as a JSON
error with the HTTP status that says why:

=====  ====================================================================================
400    not the body's form; an empty, over-long or non-printable question; bad ``seconds``;
       no stream named on an edge of several
404    the edge runs no such stream
409    the edge hands nothing to a server (no ``server:`` section), or every frame of the
       window is private (or none was judged yet): nothing may leave
507    the outbox holds as many items or bytes as it may (Insufficient Storage: room comes back
       as the server takes items, not by asking less often, so not 429)
503    the outbox cannot be written (e.g. a full disk): try again later
=====  ====================================================================================
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TypeGuard

from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.outbox.errors import HandOffRefused, InvalidHandOff, NoSuchStream, OutboxFull
from orstream.edge.outbox.followers import ItemFollow
from orstream.errors import OrstreamError
from orstream.handoffs import AskRequest, HandOffItem
from orstream.jobs import PartialResult

ASK_FORM = (
    'post {"stream": ID, "question": TEXT} (and "seconds": S for a clip other than the '
    "edge's default length)"
)
NO_SERVER = (
    "this edge hands nothing to a server (start it with --server HOST:PORT, or add a server "
    "section to its config)"
)
REFUSAL_STATUS: Mapping[type[OrstreamError], int] = {
    InvalidHandOff: 400,
    NoSuchStream: 404,
    HandOffRefused: 409,
    OutboxFull: 507,
}
POLL_S = 0.25
"""How often a page's answer stream looks whether the page or the edge went away while the
item has nothing new."""


class AskRefused(Exception):
    """A question that cannot be asked, with the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def ask_from_body(body: Mapping[str, object]) -> AskRequest:
    """The question a page's request asks; what the question may be is the desk's to say.

    Raises:
        AskRefused: no question, or a stream or seconds of the wrong type (400).
    """
    stream, question, seconds = body.get("stream", ""), body.get("question"), body.get("seconds")
    if not isinstance(stream, str) or not isinstance(question, str):
        raise AskRefused(ASK_FORM, 400)
    if seconds is None:
        return AskRequest(question, stream)
    if not _number(seconds):
        raise AskRefused(ASK_FORM, 400)
    return AskRequest(question, stream, float(seconds))


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class WebAsks:
    """The page's questions to the server tier.

    Args:
        desk: the edge's hand-off desk (None: the edge has no ``server:`` section).
    """

    def __init__(self, desk: HandOffDesk | None) -> None:
        self._desk = desk

    @property
    def available(self) -> bool:
        """Whether the edge can ask at all (it has a server section)."""
        return self._desk is not None

    def ask(self, request: AskRequest) -> tuple[HandOffItem, ItemFollow]:
        """Hand the question off; the item as added and its follow (the caller closes it).
        Blocks on the outbox's disk: call it off the event loop.

        Raises:
            AskRefused: see the module's table.
        """
        if self._desk is None:
            raise AskRefused(NO_SERVER, 409)
        try:
            return self._desk.ask(request)
        except OrstreamError as error:
            raise AskRefused(str(error)[:500], REFUSAL_STATUS.get(type(error), 503)) from None


async def answer_events(
    item: HandOffItem, follow: ItemFollow, gone: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The item's events as server-sent events, ``item`` first, until it is over; between
    events, every ``POLL_S``, the stream ends early once ``gone()`` (the page or the edge went
    away). Waiting on the follow happens off the event loop."""
    yield item_event(item)
    if item.final:
        return
    loop = asyncio.get_running_loop()
    while not gone():
        event = await loop.run_in_executor(None, follow.get, POLL_S)
        if event is None:
            continue
        if isinstance(event, PartialResult):
            yield piece_event(event)
            continue
        yield item_event(event)
        if event.final:
            return


def item_event(item: HandOffItem) -> bytes:
    """``event: item`` with what the page shows of it."""
    return _event(
        "item",
        {
            "id": item.id,
            "state": item.state,
            "sends": item.sends,
            "last_error": item.last_error,
            "error": item.error,
            "frames": item.frames,
            "withheld_frames": item.withheld_frames,
            "job_state": item.job_state,
        },
    )


def piece_event(partial: PartialResult) -> bytes:
    """``event: piece``: the next text of the answer, of its job's attempt."""
    return _event("piece", {"text": str(partial.value.get("text", "")), "attempt": partial.attempt})


def _event(name: str, data: Mapping[str, object]) -> bytes:
    # json.dumps escapes newlines, so the data is one line, as server-sent events need.
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
