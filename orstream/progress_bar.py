"""A progress bar on stderr for long work counted in items (tiles, frames).

On a terminal it redraws one line in place; otherwise (a log file, a CI job) it prints a line
at every tenth of the work, so logs show progress without thousands of lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
MIN_REDRAW_S = 0.1


class ProgressBar:
    """Counts ``total`` items under ``label``; call :meth:`advance` as items finish and
    :meth:`close` at the end."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._start = time.perf_counter()
        self._drawn_s = 0.0
        self._tenths = 0

    def advance(self, count: int) -> None:
        self.done = min(self.done + count, self.total)
        now = time.perf_counter()
        if self._interactive:
            if now - self._drawn_s >= MIN_REDRAW_S or self.done == self.total:
                self._drawn_s = now
                print(f"\r{self._line()}", end="", file=self._stream, flush=True)
        elif self.total and self.done * 10 // self.total > self._tenths:
            self._tenths = self.done * 10 // self.total
            print(self._line(), file=self._stream, flush=True)

    def close(self) -> None:
        if self._interactive:
            print(f"\r{self._line()}", file=self._stream, flush=True)

    def _line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = round(WIDTH * share)
        seconds = time.perf_counter() - self._start
        rate = self.done / seconds if seconds > 0 else 0.0
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total} ({rate:.0f}/s)"
