"""The dashboard's state, made at most every ``EVERY_S`` however many pages read it: the
runtime's status is taken once per period and shared by every page (``GET /api/state`` and
each ``/api/events`` stream of server-sent events)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from orstream.edge.service.result_hub import ResultHub
from orstream.edge.web.dashboard_state import dashboard_state
from orstream.edge.web.latest_results import LatestResults
from orstream.status import RuntimeStatus

EVERY_S = 0.5
"""How often the pages hear of a change: a step lasts minutes, a stall shows within this."""


class StateFeed:
    """The page's state from the runtime's status and its results.

    Args:
        status: the runtime's status (what ``GetStatus`` answers with).
        hub: the runtime's results (what ``Subscribe`` and ``GetTimeline`` read).
        stale_after_s: age after which a result is stale (None: no recognizer).
    """

    def __init__(
        self, status: Callable[[], RuntimeStatus], hub: ResultHub, stale_after_s: float | None
    ) -> None:
        self._status = status
        self._hub = hub
        self._stale_after_s = stale_after_s
        self._latest = LatestResults(hub)
        self._made_at = -EVERY_S
        self._text = ""

    def text(self) -> str:
        """The state as JSON text, made again when older than ``EVERY_S``."""
        now = time.monotonic()
        if now - self._made_at >= EVERY_S:
            state = dashboard_state(
                self._status(),
                self._latest.by_stream(),
                self._hub.timeline,
                self._stale_after_s,
                time.monotonic_ns(),
            )
            self._text = json.dumps(state, separators=(",", ":"))
            self._made_at = now
        return self._text

    def close(self) -> None:
        self._latest.close()
