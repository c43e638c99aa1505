"""PitVis submission CSVs from a stream's online results: one row per second of video."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.pitvis.csv_files import (
    INSTRUMENTS_FOLDER,
    STEPS_FOLDER,
    write_instrument_submission,
    write_step_submission,
)
from orstream.pitvis.layout import VIDEO_NUMBER
from orstream.results import FrameResult


def video_number_of(uri: str, default: int = 1) -> int:
    """The PitVis video number a source's name carries (``.../video_07.mp4`` -> 7)."""
    match = VIDEO_NUMBER.search(uri.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else default


class PitvisResultsWriter:
    """Collects a stream's results and writes ``steps/`` and ``instruments/`` submissions.

    Each result belongs to the second of video its frame shows (``pts`` from the stream's
    first frame). Seconds that got no result of their own -- frames a slow model had to skip,
    or a source that started late -- repeat the latest earlier prediction, which is what an
    online system showed at that time; seconds before the first result take the first one.

    Args:
        folder: where ``steps/video_NN.csv`` and ``instruments/video_NN.csv`` go.
        video: the PitVis video number ``NN``.
    """

    def __init__(self, folder: Path, video: int) -> None:
        self.folder = folder
        self.video = video
        self._first_pts_ns: int | None = None
        self._rows: dict[int, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def add(self, result: FrameResult) -> None:
        if result.step is None or result.instruments is None:
            return
        with self._lock:
            if self._first_pts_ns is None:
                self._first_pts_ns = result.pts_ns
            second = round((result.pts_ns - self._first_pts_ns) / 1e9)
            first, second_slot = result.instruments.slots
            self._rows[second] = (result.step.code, first, second_slot)

    def table(self, seconds: int | None = None) -> np.ndarray | None:
        """The prediction of every second as int64 rows ``(step, slot 1, slot 2)``: through
        the last second that got a result, or exactly ``seconds`` rows (the last prediction
        repeats to the end); None when no result came."""
        with self._lock:
            rows = dict(self._rows)
        if not rows:
            return None
        if min(rows) < 0:
            raise OrstreamError(f"stream results for video {self.video} go back before its start")
        seconds = max(rows) + 1 if seconds is None else seconds
        table = np.empty((seconds, 3), np.int64)
        latest = rows[min(rows)]
        for second in range(seconds):
            latest = rows.get(second, latest)
            table[second] = latest
        return table

    def write(self) -> tuple[Path, Path] | None:
        """Write both CSVs (None when no result came); returns their paths."""
        table = self.table()
        if table is None:
            return None
        time = np.arange(len(table), dtype=np.int64)
        name = f"video_{self.video:02d}.csv"
        steps = self.folder / STEPS_FOLDER / name
        instruments = self.folder / INSTRUMENTS_FOLDER / name
        write_step_submission(steps, time, table[:, 0])
        write_instrument_submission(instruments, time, table[:, 1:])
        return steps, instruments
