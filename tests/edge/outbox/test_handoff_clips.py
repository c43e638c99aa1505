"""Hand-off clips are cut after the privacy gate's judgement: a frame the recognizer calls out
of patient, a frame before its first result and a frame just before an out-of-patient result
are not in the clip at all; a window with nothing but private frames is refused and leaves
nothing in the outbox; automatic hand-offs follow the stream's own time."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from handoff_samples import BLUE, GREEN, MS, RED, clip_colours

from orstream.edge.operators.handoff_clips import AutoHandOff, HandOffClipsOp
from orstream.edge.operators.privacy_gate import PrivacyGateOp
from orstream.edge.outbox.desk import CLIP_NAME, HandOffDesk
from orstream.edge.outbox.errors import HandOffRefused
from orstream.edge.outbox.store import ITEMS, OutboxStore
from orstream.handoffs import HandOffRequest
from orstream.labels import OUT_OF_PATIENT
from orstream.results import FrameResult, StepResult
from orstream.streams.frame import Frame

OUT_AT_MS = (3000, 3500, 6000, 6500, 7000, 7500)
"""Results out of patient; those at 1000..5500 between them call it in patient."""


def frame(at_ms: int, start_ns: int) -> Frame:
    """A frame coloured by the truth: blue before the first result, red out of patient."""
    colour = BLUE if at_ms < 1000 else RED if 3000 <= at_ms < 4000 or at_ms >= 6000 else GREEN
    image = np.empty((48, 64, 3), np.uint8)
    image[:] = colour
    return Frame(image, at_ms * MS, start_ns + at_ms * MS, at_ms // 100, "or1")


def result(at_ms: int, start_ns: int) -> FrameResult:
    code = OUT_OF_PATIENT if at_ms in OUT_AT_MS else 3
    at_ns = start_ns + at_ms * MS
    step = StepResult(code, 0.9)
    return FrameResult("or1", at_ms // 100, at_ms * MS, at_ns, at_ns, (), step=step)


def judged_stream(desk: HandOffDesk, schedule: tuple[AutoHandOff, ...] = ()) -> HandOffClipsOp:
    """8 s of the stream through a privacy gate into the stream's clips, captured from now (the
    gate measures how long frames wait against the clock)."""
    start_ns = time.monotonic_ns()
    gate = PrivacyGateOp("or1", "blank", result_interval_s=0.5, delay_s=60.0)
    clips = HandOffClipsOp("or1", desk, schedule)
    gate.outputs["judged"].taps.append(lambda judged: clips.compute({"judged": [judged]}))
    for at_ms in range(0, 8000, 100):
        results = [result(at_ms, start_ns)] if at_ms >= 1000 and at_ms % 500 == 0 else []
        gate.compute({"video": [frame(at_ms, start_ns)], "results": results})
    gate.on_stop()
    return clips


def test_private_frames_are_not_in_the_clip_and_an_all_private_window_is_refused(
    tmp_path: Path,
) -> None:
    desk = HandOffDesk(OutboxStore(tmp_path), max_s=30.0, fps=10.0)
    judged_stream(desk)
    item = desk.hand_off(HandOffRequest("probe", "or1", 8.0))
    colours = clip_colours(tmp_path / ITEMS / item.id / CLIP_NAME)
    # In patient and judged so on both sides: 1.0-2.4 s and 4.0-5.4 s; the green frames of
    # 2.5-2.9 and 5.5-5.9 s have an out-of-patient result after them and are left out too.
    assert colours == ["green"] * 30
    assert (item.frames, item.withheld_frames) == (30, 50)

    with pytest.raises(HandOffRefused, match=r"all 15 frames of the last 1\.5 s"):
        desk.hand_off(HandOffRequest("probe", "or1", 1.5))
    assert [i.id for i in desk.recent()] == [item.id]
    assert [p.name for p in (tmp_path / ITEMS).iterdir()] == [item.id]
    desk.close()


def test_automatic_hand_offs_follow_the_stream_time_and_skip_private_windows(
    tmp_path: Path,
) -> None:
    desk = HandOffDesk(OutboxStore(tmp_path), max_s=30.0, fps=10.0)
    every_2_s = AutoHandOff("probe", every_s=2.0, seconds=0.5, params={"window_s": "0.5"})
    clips = judged_stream(desk, (every_2_s,))
    # Due at 2, 4 and 6 s of the stream: the window 1.6-2.0 s is in patient, of 3.6-4.0 s only
    # the frame at 4.0 s is, and 5.6-6.0 s is private throughout (refused, nothing written).
    items = sorted(desk.recent(), key=lambda item: item.created_s)
    assert [(i.origin, i.kind, dict(i.params)) for i in items] == [
        ("auto", "probe", {"window_s": "0.5"})
    ] * 2
    assert [i.frames for i in items] == [5, 1]
    assert (clips.handed_off, clips.refused) == (2, 1)
    desk.close()
