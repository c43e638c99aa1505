"""The step segments of a stream so far, built online from its frame results."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from orstream.results import FrameResult


@dataclass(frozen=True)
class StepSegment:
    """A run of results with the same step.

    Attributes:
        code: PitVis step code.
        start_index: frame index of the segment's first result.
        end_index: frame index of its last result so far.
        start_pts_ns: source timestamp of its first result.
        end_pts_ns: source timestamp of its last result so far.
    """

    code: int
    start_index: int
    end_index: int
    start_pts_ns: int
    end_pts_ns: int

    @property
    def duration_s(self) -> float:
        return (self.end_pts_ns - self.start_pts_ns) / 1e9


class StepTimeline:
    """Accumulates the step segments of one stream; safe to read while another thread adds."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._segments: list[StepSegment] = []
        self._lock = threading.Lock()

    def add(self, result: FrameResult) -> None:
        """Extend the timeline with a result (ignored when it carries no step)."""
        if result.step is None:
            return
        code = result.step.code
        with self._lock:
            last = self._segments[-1] if self._segments else None
            if last is not None and last.code == code:
                self._segments[-1] = StepSegment(
                    code, last.start_index, result.index, last.start_pts_ns, result.pts_ns
                )
            else:
                self._segments.append(
                    StepSegment(code, result.index, result.index, result.pts_ns, result.pts_ns)
                )

    def segments(self) -> tuple[StepSegment, ...]:
        """The segments so far, oldest first."""
        with self._lock:
            return tuple(self._segments)
