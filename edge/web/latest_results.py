"""The newest step-and-instruments result of each stream, read from the result hub as gRPC's
``Subscribe`` reads it (its own bounded subscription: the hub never waits for it)."""

from __future__ import annotations

import threading

from orstream.edge.service.result_hub import ResultHub
from orstream.results import FrameResult

_POLL_S = 0.5


class LatestResults:
    """Keeps each stream's newest recognizer result, on a thread of its own, until closed."""

    def __init__(self, hub: ResultHub) -> None:
        self._subscription = hub.subscribe(kinds=("step", "instruments"), capacity=16)
        self._latest: dict[str, FrameResult] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="web-results", daemon=True)
        self._thread.start()

    def by_stream(self) -> dict[str, FrameResult]:
        with self._lock:
            return dict(self._latest)

    def _read(self) -> None:
        while True:
            result = self._subscription.get(timeout_s=_POLL_S)
            if result is None:
                if self._subscription.closed:
                    return
                continue
            if result.step is not None:
                with self._lock:
                    self._latest[result.stream_id] = result

    def close(self) -> None:
        self._subscription.close()
        self._thread.join(timeout=2 * _POLL_S)
