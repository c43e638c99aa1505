"""Stopping a long-running orstream process on SIGTERM as on Ctrl-C: drain first; a second
signal forces.

``docker stop`` and systemd send SIGTERM; an operator at the console presses Ctrl-C (SIGINT).
Both ask the process to stop the same way, so it can finish what it holds (the edge finalises
recordings and ends subscriber streams; the job server queues its running jobs again). A second
signal while stopping exits at once with 128 + the signal's number, finalising nothing: the
operator asked for it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger(__name__)


class StopSignals:
    """While entered, SIGINT and SIGTERM call ``on_stop(name)`` once; a second one forces an exit.

    Signal handlers can only be set from the main thread; elsewhere (an app run from a worker
    thread) entering changes nothing.

    Args:
        on_stop: called in the main thread with the signal's name, e.g. ``"SIGTERM"``; it must
            return at once (ask, do not wait).
    """

    def __init__(self, on_stop: Callable[[str], None]) -> None:
        self.on_stop = on_stop
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.received is not None:
            log.warning("%s while stopping after %s: exiting now", name, self.received)
            os._exit(128 + number)
        self.received = name
        log.warning("%s: stopping (a second signal exits at once)", name)
        self.on_stop(name)
