"""Followers of single outbox items: what an ``Ask`` call streams while its hand-off runs.

Everything the outbox learns about its items passes through :class:`ItemFollowers` on its way
to the edge's subscribers: each change of an item, and each partial result of its server job
(a vision-language answer's text pieces). A caller following an item gets both in order on a
queue of its own. The server replays a job's partial results whenever its watch is opened again
(after a lost connection), so each is passed on once, by its (attempt, sequence).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from orstream.handoffs import HandOffItem
from orstream.jobs import PartialResult

ItemEvent = HandOffItem | PartialResult


class ItemFollow:
    """The events of one item, oldest first; ``close`` it when done."""

    def __init__(self, item_id: str, on_close: Callable[[ItemFollow], None]) -> None:
        self.item_id = item_id
        self.events: queue.SimpleQueue[ItemEvent] = queue.SimpleQueue()
        self._on_close = on_close

    def get(self, timeout_s: float) -> ItemEvent | None:
        """The next event, or None when none came within ``timeout_s``."""
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._on_close(self)


class ItemFollowers:
    """Passes every item change to ``on_change`` (the edge's subscribers) and to the followers
    of that item, and every partial result to its item's followers.

    Its lock is held while an item is added and followed (:meth:`adding`), so the sender cannot
    tell anything about the new item before its follower listens.
    """

    def __init__(self, on_change: Callable[[HandOffItem], None] | None = None) -> None:
        self._on_change = on_change or (lambda item: None)
        self._lock = threading.RLock()
        self._follows: dict[str, list[ItemFollow]] = {}
        self._seen: dict[str, tuple[int, int]] = {}

    @property
    def adding(self) -> threading.RLock:
        """Hold while adding an item and following it."""
        return self._lock

    @property
    def followed(self) -> int:
        """Items with a follower now."""
        with self._lock:
            return len(self._follows)

    def follow(self, item_id: str) -> ItemFollow:
        """A follower of ``item_id`` from now on."""
        with self._lock:
            follow = ItemFollow(item_id, self._unfollow)
            self._follows.setdefault(item_id, []).append(follow)
            return follow

    def changed(self, item: HandOffItem) -> None:
        """An item changed (the outbox store has committed it)."""
        with self._lock:
            for follow in self._follows.get(item.id, ()):
                follow.events.put(item)
            if item.final:
                self._seen.pop(item.id, None)
        self._on_change(item)

    def partial(self, item_id: str, partial: PartialResult) -> None:
        """The item's job produced a partial result (replays of one already passed on are
        dropped)."""
        key = (partial.attempt, partial.sequence)
        with self._lock:
            if key <= self._seen.get(item_id, (0, -1)):
                return
            self._seen[item_id] = key
            for follow in self._follows.get(item_id, ()):
                follow.events.put(partial)

    def _unfollow(self, follow: ItemFollow) -> None:
        with self._lock:
            left = [f for f in self._follows.get(follow.item_id, []) if f is not follow]
            if left:
                self._follows[follow.item_id] = left
            else:
                self._follows.pop(follow.item_id, None)
