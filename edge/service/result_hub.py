"""Fan-out of the runtime's frame results to any number of readers that may fall behind.

The runtime publishes each :class:`~orstream.results.FrameResult` once; every subscription
gets its own bounded buffer that drops its oldest result when full, so a reader that stalls
(a slow gRPC client, a hung network) loses results instead of slowing the runtime or the other
readers. The hub also keeps the online step timeline of every stream it has seen.

Hand-off updates (:class:`~orstream.handoffs.HandOffItem`, each change of an item of the
edge's outbox) travel the same way, in order with the results, to the subscriptions that name
the kind ``handoff`` only.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Iterable

from orstream.errors import quoted
from orstream.handoffs import HANDOFF_KIND, HandOffItem
from orstream.results import DEFAULT_KINDS, KINDS, FrameResult
from orstream.step_timeline import StepSegment, StepTimeline


class Subscription:
    """One reader's view of the hub: the results it asked for, in publish order, bounded.

    Made by :meth:`ResultHub.subscribe`. ``get`` is meant for one reading thread; ``close``,
    ``dropped`` and ``pending`` are safe from any thread.
    """

    def __init__(
        self, hub: ResultHub, stream_ids: frozenset[str], kinds: frozenset[str], capacity: int
    ) -> None:
        self._hub = hub
        self._stream_ids = stream_ids
        self._kinds = kinds
        self._capacity = capacity
        self._buffer: collections.deque[FrameResult | HandOffItem] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._dropped = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        """Results this subscription discarded because its buffer was full."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Results waiting to be read (never more than the capacity)."""
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        """Set once the subscription or its hub was closed; buffered results can still be read."""
        return self._closed

    def get(self, timeout_s: float | None = None) -> FrameResult | None:
        """The oldest unread frame result, waiting up to ``timeout_s`` (forever when None) for
        one; hand-off updates on the way are passed over (:meth:`get_event` reads both).

        Returns:
            The result with only the subscribed kinds filled, or None when none arrived in time
            or the subscription is closed and drained.
        """
        while True:
            event = self.get_event(timeout_s)
            if not isinstance(event, HandOffItem):
                return event

    def get_event(self, timeout_s: float | None = None) -> FrameResult | HandOffItem | None:
        """The oldest unread result or hand-off update, as :meth:`get` waits for it."""
        with self._ready:
            self._ready.wait_for(lambda: self._buffer or self._closed, timeout_s)
            if not self._buffer:
                return None
            event = self._buffer.popleft()
        return event if isinstance(event, HandOffItem) else self._project(event)

    def close(self) -> None:
        """Stop receiving results and wake a waiting ``get``; idempotent."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._hub._remove(self)

    def _offer(self, result: FrameResult | HandOffItem) -> None:
        """Buffer a published result or hand-off update if the subscription wants it; never
        waits for the reader."""
        if self._stream_ids and result.stream_id not in self._stream_ids:
            return
        kinds = (HANDOFF_KIND,) if isinstance(result, HandOffItem) else result.kinds
        if self._kinds.isdisjoint(kinds):
            return
        with self._ready:
            if self._closed:
                return
            if len(self._buffer) >= self._capacity:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(result)
            self._ready.notify()

    def _project(self, result: FrameResult) -> FrameResult:
        """Leave out the kinds this subscription did not ask for."""
        if self._kinds.issuperset(result.kinds):
            return result
        return dataclasses.replace(
            result,
            step=result.step if "step" in self._kinds else None,
            instruments=result.instruments if "instruments" in self._kinds else None,
            segmentation=result.segmentation if "segmentation" in self._kinds else None,
            zeroshot_step=result.zeroshot_step if "zeroshot_step" in self._kinds else None,
        )


class ResultHub:
    """Receives every frame result of the runtime and hands it to the subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Replaced, never mutated, so publish() iterates without taking the lock.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._timelines: dict[str, StepTimeline] = {}
        self._closed = False

    def publish(self, result: FrameResult) -> None:
        """Hand a result to every subscription that wants it and to its stream's timeline.

        Safe from any thread; never waits for a reader (a full subscription drops its oldest).
        """
        timeline = self._timelines.get(result.stream_id)
        if timeline is None:
            with self._lock:
                timeline = self._timelines.setdefault(
                    result.stream_id, StepTimeline(result.stream_id)
                )
        timeline.add(result)
        for subscription in self._subscriptions:
            subscription._offer(result)

    def publish_handoff(self, item: HandOffItem) -> None:
        """Hand an outbox item's change to every subscription of the kind ``handoff``."""
        for subscription in self._subscriptions:
            subscription._offer(item)

    def subscribe(
        self, stream_ids: Iterable[str] = (), kinds: Iterable[str] = (), capacity: int = 64
    ) -> Subscription:
        """A new subscription to the results published from now on.

        Args:
            stream_ids: only these streams (every stream when empty).
            kinds: only results carrying at least one of these kinds, with only these kinds
                filled (:data:`orstream.results.DEFAULT_KINDS` when empty: segmentation only
                for those who ask); see :data:`orstream.results.KINDS`, and ``handoff`` for
                the updates of the edge's hand-offs.
            capacity: results buffered before the oldest is dropped.

        Raises:
            ValueError: for an unknown kind or a capacity below 1.
        """
        wanted = frozenset(kinds) or frozenset(DEFAULT_KINDS)
        unknown = sorted(wanted - {*KINDS, HANDOFF_KIND})
        if unknown:
            raise ValueError(
                f"unknown result kind {', '.join(map(quoted, unknown[:3]))} "
                f"(known: {', '.join((*KINDS, HANDOFF_KIND))})"
            )
        if capacity < 1:
            raise ValueError(f"subscription capacity must be at least 1, not {capacity}")
        subscription = Subscription(self, frozenset(stream_ids), wanted, capacity)
        with self._lock:
            hub_open = not self._closed
            if hub_open:
                self._subscriptions = (*self._subscriptions, subscription)
        if not hub_open:
            subscription.close()
        return subscription

    def timeline(self, stream_id: str) -> tuple[StepSegment, ...]:
        """The step segments of a stream so far, oldest first.

        Raises:
            KeyError: when no result of that stream was published.
        """
        with self._lock:
            timeline = self._timelines.get(stream_id)
        if timeline is None:
            raise KeyError(stream_id)
        return timeline.segments()

    def streams(self) -> tuple[str, ...]:
        """The streams with published results, in the order they first appeared."""
        with self._lock:
            return tuple(self._timelines)

    def close(self) -> None:
        """End every subscription; later subscriptions start closed. Publishing still works."""
        with self._lock:
            self._closed = True
            subscriptions = self._subscriptions
        for subscription in subscriptions:
            subscription.close()

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
