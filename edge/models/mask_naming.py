"""The recognizer's instruments named by the live masks of the same frame.

The recognizer's own instrument head sees a frame at 112x192 through pooled features and tells
the 18 instruments apart poorly (instrument F1 0.39 on 8 fresh phantom cases of 90-300 s). The
live masks find each instrument with the segmenter's clicks at its full input size and name it
from a tip crop (:class:`~orstream.edge.models.live_masks.LiveMasks`): F1 0.87 on the same
cases. So when the runtime segments with an instrument classifier, each recognizer result waits
for the masks of its own frame (the segmenter's rate picks it too when the rates divide: 1 Hz
results, masks at 2 or 5 Hz), at most ``wait_s``, and takes its instruments from them: the two
most confident names, as PitVis allows two per frame. Nothing is inferred twice; a result is
as late as the masks of its frame.

Instruments change within a second (a phantom instrument can show for one), so masks of another
frame name a result only when its own never come: the latest masks at or before its frame, no
more than ``max_age_s`` older; with none, the recognizer's head names its instruments.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from orstream.labels import OUT_OF_PATIENT
from orstream.pitvis.instrument_slots import named_slots
from orstream.results import FrameResult, InstrumentResult

WAIT_S = 0.5
"""How long a result waits for the masks of its frame (live masks take 70-300 ms per frame on
2 CPU cores)."""
MAX_AGE_S = 1.0
"""Masks of an earlier frame name a result whose own never came only up to this much older."""
KEPT_MASKS = 16
"""Masks results kept per stream."""


@dataclass(frozen=True)
class _Masks:
    pts_ns: int
    named: dict[int, float]
    models: tuple[str, ...]


@dataclass(frozen=True)
class _Waiting:
    result: FrameResult
    deadline_ns: int


class MaskNaming:
    """Holds each stream's recognizer results until the masks of their frames name them.

    Results leave in the order they came, per stream, from :meth:`hold`, :meth:`note`,
    :meth:`due` or :meth:`flush`.

    Args:
        wait_s: the longest a result waits for its frame's masks.
        max_age_s: how much older other masks may be and still name a result.
        clock: monotonic nanoseconds (tests give their own).
    """

    def __init__(
        self,
        wait_s: float = WAIT_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.wait_ns = round(wait_s * 1e9)
        self.max_age_ns = round(max_age_s * 1e9)
        self.clock = clock
        self._waiting: dict[str, deque[_Waiting]] = {}
        self._masks: dict[str, deque[_Masks]] = {}

    def hold(self, result: FrameResult) -> list[FrameResult]:
        """Hold a recognizer result; returns the results that can leave now."""
        waiting = self._waiting.setdefault(result.stream_id, deque())
        waiting.append(_Waiting(result, self.clock() + self.wait_ns))
        return self._release(result.stream_id)

    def note(self, masks: FrameResult) -> list[FrameResult]:
        """Take a live masks result; returns the results that can leave now."""
        if masks.segmentation is None:
            return []
        kept = self._masks.setdefault(masks.stream_id, deque(maxlen=KEPT_MASKS))
        kept.append(_Masks(masks.pts_ns, masks.segmentation.instruments(), masks.models))
        return self._release(masks.stream_id)

    def due(self) -> list[FrameResult]:
        """The results whose wait is over."""
        return [result for stream in list(self._waiting) for result in self._release(stream)]

    def flush(self) -> list[FrameResult]:
        """Every result still held (the streams ended)."""
        return [result for stream in list(self._waiting) for result in self._release(stream, True)]

    def forget(self, stream: str) -> list[FrameResult]:
        """The stream jumped or is gone: its held results leave now, its masks are dropped."""
        released = self._release(stream, True)
        self._masks.pop(stream, None)
        self._waiting.pop(stream, None)
        return released

    def _release(self, stream: str, now_or_never: bool = False) -> list[FrameResult]:
        waiting = self._waiting.get(stream)
        masks = self._masks.get(stream, ())
        released = []
        while waiting:
            result = waiting[0].result
            own = next((m for m in masks if m.pts_ns == result.pts_ns), None)
            awaited = own is None and not any(m.pts_ns > result.pts_ns for m in masks)
            if awaited and not now_or_never and self.clock() < waiting[0].deadline_ns:
                break
            waiting.popleft()
            released.append(self._named(result, own or self._earlier(masks, result.pts_ns)))
        return released

    def _earlier(self, masks: deque[_Masks] | tuple[()], pts_ns: int) -> _Masks | None:
        """The latest masks at or before ``pts_ns``, if young enough to speak for it."""
        before = [m for m in masks if pts_ns - self.max_age_ns <= m.pts_ns <= pts_ns]
        return max(before, key=lambda m: m.pts_ns) if before else None

    def _named(self, result: FrameResult, masks: _Masks | None) -> FrameResult:
        if masks is None or result.step is None:
            return result
        step = result.step.code
        named = {} if step == OUT_OF_PATIENT else masks.named
        present = tuple(sorted(named.items(), key=lambda item: (-item[1], item[0])))
        return replace(
            result,
            produced_ns=max(result.produced_ns, self.clock()),
            models=result.models + masks.models,
            instruments=InstrumentResult(named_slots(step, named), present),
        )
