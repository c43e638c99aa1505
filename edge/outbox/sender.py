"""The outbox's sender: every item not yet over is submitted with its idempotency key, then its
job is watched to its end, retrying with backoff whatever fails on the way.

Each item has a worker thread of its own while it is worked on (at most ``max_in_flight`` at
once), so a long job never holds up the items behind it. What the sender learns is committed to
the store before it acts on it, and a submission is only ever repeated with the item's key: an
item the edge sent before a crash, whose answer it never recorded, is answered by the server
with the job it already made. Nothing is given up on but what the server refuses for good
(an unknown kind, bad parameters): an outage of any length is waited out.

A server whose store was replaced no longer knows an accepted item's job (``NOT_FOUND``): the
item is sent again, with its key, which that server has never seen.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from orstream.edge.outbox.job_calls import CallFailed, JobServerCalls
from orstream.edge.outbox.retry import RetryPolicy
from orstream.edge.outbox.store import OutboxStore
from orstream.errors import OrstreamError
from orstream.handoffs import HandOffItem
from orstream.jobs import InputSpec, Job, JobSubmission, PartialResult

log = logging.getLogger(__name__)

REFUSED_FOR_GOOD = frozenset(
    {"INVALID_ARGUMENT", "ALREADY_EXISTS", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED"}
)
"""Status codes that sending again cannot change: the item is rejected. Anything else (the
server away, its queue full, a token it does not know yet) is tried again."""

DISPATCH_S = 1.0
"""How often the sender looks for items nobody woke it for (a safety net: adding wakes it)."""


class OutboxSender:
    """Sends an outbox's items (see the module); ``start`` it, ``stop`` it.

    Args:
        store: the outbox.
        connect: makes a client of the server (called again after it failed).
        retry: the waits between failed tries of an item.
        on_change: told every item after each change (state, progress, result).
        on_partial: told each partial result of an item's job (with the item's id; a watch
            opened again replays the job's earlier ones).
        max_in_flight: items worked on at once.
        submit_timeout_s: the longest one submission (its upload) may take.
        rng: the jitter's source (seeded in tests).
    """

    def __init__(
        self,
        store: OutboxStore,
        connect: Callable[[], JobServerCalls],
        retry: RetryPolicy | None = None,
        on_change: Callable[[HandOffItem], None] | None = None,
        max_in_flight: int = 4,
        on_partial: Callable[[str, PartialResult], None] | None = None,
        submit_timeout_s: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._connect = connect
        self._retry = retry or RetryPolicy()
        self._on_change = on_change or (lambda item: None)
        self._on_partial = on_partial or (lambda item_id, partial: None)
        self._max_in_flight = max_in_flight
        self._submit_timeout_s = submit_timeout_s
        self._rng = rng or random.Random()
        self._client: JobServerCalls | None = None
        self._client_lock = threading.Lock()
        self._wake = threading.Condition()
        self._active: dict[str, threading.Thread] = {}
        self._stopping = threading.Event()
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="outbox-sender", daemon=True
        )

    def start(self) -> None:
        self._dispatcher.start()

    def wake(self) -> None:
        """Look for new items now (called after one is added)."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop sending: calls in flight are cancelled, and items stay as the store has them
        (the next sender on this outbox goes on from there)."""
        self._stopping.set()
        self.wake()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
        if self._dispatcher.is_alive():
            self._dispatcher.join(timeout_s)
        for worker in list(self._active.values()):
            worker.join(timeout_s)

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                for item in self._store.unfinished():
                    if len(self._active) >= self._max_in_flight:
                        break
                    if item.id not in self._active:
                        worker = threading.Thread(
                            target=self._work, args=(item.id,), name=f"outbox-{item.id}"
                        )
                        self._active[item.id] = worker
                        worker.start()
                self._wake.wait(DISPATCH_S)

    def _work(self, item_id: str) -> None:
        """Work on one item until it is over or the sender stops."""
        failures = 0
        try:
            while not self._stopping.is_set():
                attempt = _Attempt()
                try:
                    if self._send(item_id, attempt):
                        return
                    error = "the server ended the watch before the job ended"
                except CallFailed as refusal:
                    if self._stopping.is_set():
                        return
                    if refusal.code in REFUSED_FOR_GOOD:
                        self._tell(self._store.rejected(item_id, str(refusal)))
                        return
                    item = self._store.get(item_id)
                    if refusal.code == "NOT_FOUND" and item.state == "accepted":
                        why = f"the server no longer knows job {item.job_id}: sending it again"
                        self._tell(self._store.forgotten(item_id, why))
                        continue
                    error = str(refusal)
                except OrstreamError as unreachable:
                    error = str(unreachable)
                if self._stopping.is_set():
                    return
                failures = 1 if attempt.progressed else failures + 1
                self._tell(self._store.failed_try(item_id, error))
                wait_s = self._retry.wait_s(failures, self._rng)
                log.info("outbox item %s: %s; next try in %.1f s", item_id, error, wait_s)
                self._stopping.wait(wait_s)
        finally:
            with self._wake:
                self._active.pop(item_id, None)
                self._wake.notify_all()

    def _send(self, item_id: str, attempt: _Attempt) -> bool:
        """Submit the item if the server has not taken it yet, then watch its job; True once
        the item is over.

        Raises:
            OrstreamError: the server is not reachable, or refused a call.
        """
        item = self._store.get(item_id)
        client = self._server()
        if item.state == "waiting":
            inputs = self._store.inputs(item_id)
            if not inputs:
                self._tell(self._store.rejected(item_id, "its clip is missing from the outbox"))
                return True
            submission = JobSubmission(
                item.kind,
                item.idempotency_key,
                tuple(InputSpec(path.name, upload_bytes=path.stat().st_size) for path in inputs),
                item.params,
            )
            job_id = client.submit(submission, inputs, self._submit_timeout_s)
            item = self._store.accepted(item_id, job_id)
            attempt.progressed = True
            self._tell(item)
        for event in client.watch(item.job_id):
            if isinstance(event, Job):
                item = self._store.job_seen(item_id, event)
                attempt.progressed = True
                self._tell(item)
                if item.final:
                    return True
            else:
                self._on_partial(item_id, event)
        return False

    def _server(self) -> JobServerCalls:
        """The client of the server, connected on first need (and after a stop, refused)."""
        with self._client_lock:
            if self._stopping.is_set():
                raise OrstreamError("the sender is stopping")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _tell(self, item: HandOffItem) -> None:
        try:
            self._on_change(item)
        except Exception:  # a subscriber's bug never stops sending
            log.exception("outbox item %s: telling subscribers failed", item.id)


class _Attempt:
    """What one try of an item got done: whether it recorded anything new (then the backoff
    starts again from its first wait)."""

    def __init__(self) -> None:
        self.progressed = False
