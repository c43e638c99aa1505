"""Input ports and the connections that feed them: bounded, each with a drop policy and counts.

An operator declares its input ports (:class:`InputSpec`): a capacity, a drop policy for when
the port is full, and optionally a rate. Every ``add_flow`` into a port makes one
:class:`Connection`: its own bounded queue, so several upstreams (one per video stream, say)
never evict each other's items, and the operator can take one item of each at once (a batch).

The policies:

- ``latest``: the newest item replaces the oldest waiting one (latest-frame-wins; live paths),
- ``drop_oldest``: the same, named for queues deeper than one item,
- ``block``: the producer waits for room (nothing is lost; files played as fast as possible).

A frame dropped for a newer one passes its ``discontinuity`` flag on to it, so a model that
skips the first frame after a reconnect still starts its temporal state over.

A port with a rate keeps, per stream, only the frames due at that rate by source timestamp
(:class:`~orstream.edge.graph.rate_sampler.RateSampler`); the others are *skipped* (not due),
which is not a drop. Every item a connection discards under its policy is counted as dropped,
so drops are visible in the status and the benches.

All the connections into one operator share that operator's condition variable: a producer
putting into any of them wakes the operator, which waits on one thing whatever its inputs.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar, cast

from orstream.edge.graph.rate_sampler import RateSampler
from orstream.errors import OrstreamError
from orstream.streams.frame import Frame

T = TypeVar("T")

Policy = Literal["latest", "drop_oldest", "block"]
POLICIES: tuple[str, ...] = ("latest", "drop_oldest", "block")


@dataclass(frozen=True)
class InputSpec:
    """How an input port queues what flows into it (each connection gets its own queue).

    Attributes:
        name: the port's name on its operator.
        capacity: items each connection holds at most.
        policy: what a put does when a connection is full (see the module docstring).
        rate_hz: keep only frames due at this rate per stream (None: every item).
    """

    name: str
    capacity: int = 1
    policy: Policy = "latest"
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise OrstreamError(
                f"port {self.name}: capacity must be at least 1, not {self.capacity}"
            )
        if self.policy not in POLICIES:
            raise OrstreamError(
                f"port {self.name}: unknown drop policy {self.policy!r}; known: {POLICIES}"
            )
        if self.rate_hz is not None and self.rate_hz <= 0:
            raise OrstreamError(f"port {self.name}: rate must be positive, not {self.rate_hz}")


class PortClosed(Exception):
    """Raised by :meth:`Connection.get` once the connection is closed and empty."""


class Connection(Generic[T]):
    """One flow into an input port: a bounded queue with the port's policy.

    Args:
        name: ``upstream.port->downstream.port`` (or any name, in status reports).
        spec: capacity, policy and rate of the port it feeds.
        stream_id: only items of this stream flow through (None: every item); the upstream's
            output port applies it.
        condition: the downstream operator's condition (a fresh one when alone, e.g. tests).
    """

    def __init__(
        self,
        name: str,
        spec: InputSpec,
        stream_id: str | None = None,
        condition: threading.Condition | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.stream_id = stream_id
        self.accepted = 0
        self.dropped = 0
        self.skipped = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._changed = condition if condition is not None else threading.Condition()
        self._samplers: dict[str, RateSampler] = {}

    @property
    def closed(self) -> bool:
        return self._closed

    def wants(self, item: object) -> bool:
        """Whether ``item`` flows through this connection (its stream filter)."""
        return self.stream_id is None or getattr(item, "stream_id", None) == self.stream_id

    def put(self, item: T) -> bool:
        """Offer an item; False when the connection is closed (the item is then not taken).

        ``latest``/``drop_oldest`` never wait; ``block`` waits for room. A frame not due at the
        port's rate is skipped (True: taken care of, nothing queued).
        """
        if self.spec.rate_hz is not None and not self._due(item):
            self.skipped += 1
            return True
        with self._changed:
            if self.spec.policy == "block":
                while len(self._items) >= self.spec.capacity and not self._closed:
                    self._changed.wait()
            if self._closed:
                return False
            if len(self._items) >= self.spec.capacity:
                lost = self._items.popleft()
                self.dropped += 1
                item = _keep_discontinuity(lost, item)
            self._items.append(item)
            self.accepted += 1
            self._changed.notify_all()
            return True

    def take(self) -> T | None:
        """The oldest waiting item, or None; never waits. Call with the condition held or not."""
        with self._changed:
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def get(self, timeout_s: float | None = None) -> T | None:
        """The oldest waiting item, waiting up to ``timeout_s`` for one; None when none came.

        Raises:
            PortClosed: the connection is closed and nothing is left in it.
        """
        with self._changed:
            if not self._items and not self._closed:
                self._changed.wait_for(lambda: self._items or self._closed, timeout_s)
            if self._items:
                item = self._items.popleft()
                self._changed.notify_all()
                return item
            if self._closed:
                raise PortClosed(self.name)
            return None

    def ready(self) -> bool:
        """An item is waiting (read with the condition held for a consistent answer)."""
        return bool(self._items)

    def drained(self) -> bool:
        """Closed and empty: nothing more will come."""
        return self._closed and not self._items

    def close(self) -> None:
        """No more items: waiting producers give up, the consumer drains what is left."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def _due(self, item: object) -> bool:
        stream = str(getattr(item, "stream_id", ""))
        sampler = self._samplers.get(stream)
        if sampler is None:
            assert self.spec.rate_hz is not None
            sampler = self._samplers[stream] = RateSampler(self.spec.rate_hz)
        if not isinstance(item, Frame):
            raise OrstreamError(f"connection {self.name} samples frames at a rate, got a "
                                f"{type(item).__name__}")  # fmt: skip
        return sampler.take(item)


def _keep_discontinuity(lost: Any, item: T) -> T:
    """``item``, flagged a discontinuity when the frame it replaces was one."""
    if getattr(lost, "discontinuity", False) and getattr(item, "discontinuity", True) is False:
        return cast(T, replace(cast(Any, item), discontinuity=True))
    return item
