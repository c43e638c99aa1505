"""Named, bounded ports between runtime stages, each with its own drop policy.

A port is a queue with a capacity and a policy for when it is full:

- ``latest``: the newest item replaces the oldest waiting one (latest-frame-wins; live paths),
- ``drop_oldest``: the same, named for buffers deeper than one item,
- ``block``: the producer waits for room (nothing is lost; files played as fast as possible).

Every item a port discards is counted, so drops are visible in the status and the bench.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

from orstream.errors import OrstreamError

T = TypeVar("T")

Policy = Literal["latest", "drop_oldest", "block"]
POLICIES: tuple[str, ...] = ("latest", "drop_oldest", "block")


class PortClosed(Exception):
    """Raised by :meth:`Port.get` once the port is closed and empty."""


class Port(Generic[T]):
    """A bounded queue from one stage to the next.

    Args:
        name: the port's name in status reports (``stage.port``).
        capacity: items it holds at most (``latest`` ports usually hold one).
        policy: what ``put`` does when the port is full (see the module docstring).
    """

    def __init__(self, name: str, capacity: int = 1, policy: Policy = "latest") -> None:
        if capacity < 1:
            raise OrstreamError(f"port {name}: capacity must be at least 1, not {capacity}")
        if policy not in POLICIES:
            raise OrstreamError(f"port {name}: unknown drop policy {policy!r}; known: {POLICIES}")
        self.name = name
        self.capacity = capacity
        self.policy = policy
        self.accepted = 0
        self.dropped = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, item: T) -> bool:
        """Offer an item; False when the port is closed (the item is then not taken).

        ``latest``/``drop_oldest`` ports never wait; ``block`` ports wait for room.
        """
        with self._changed:
            if self.policy == "block":
                while len(self._items) >= self.capacity and not self._closed:
                    self._changed.wait()
            if self._closed:
                return False
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.accepted += 1
            self._changed.notify_all()
            return True

    def get(self, timeout_s: float | None = None) -> T | None:
        """The oldest waiting item; None after ``timeout_s`` without one.

        Raises:
            PortClosed: the port is closed and nothing is left in it.
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

    def close(self) -> None:
        """No more items: waiting producers give up, consumers drain what is left."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)
