"""The privacy gate judges each leaving frame by the results on both sides of it: it waits for
the next result (at most ``delay_s``), fails closed before the first result and on stale ones,
and closes on the recognizer's own out-of-patient probability as well as its smoothed step."""

from __future__ import annotations

import time

import numpy as np

from orstream.edge.operators.privacy_gate import PrivacyGateOp
from orstream.labels import OUT_OF_PATIENT
from orstream.results import FrameResult, StepResult
from orstream.streams.frame import Frame

MS = 1_000_000
START = [time.monotonic_ns()]
"""Capture times are on the monotonic clock, as the sources stamp them, from each test's start
(:func:`gate` sets it)."""


def frame(at_ms: int) -> Frame:
    image = np.full((36, 64, 3), 200, np.uint8)
    return Frame(image, at_ms * MS, START[0] + at_ms * MS, at_ms, "or1")


def result(at_ms: int, code: int, out_of_patient: float = 0.0) -> FrameResult:
    step = StepResult(code, 0.9, out_of_patient)
    return FrameResult(
        "or1", at_ms, at_ms * MS, START[0] + at_ms * MS, START[0] + at_ms * MS, (), step=step
    )


def gate(delay_s: float = 60.0) -> tuple[PrivacyGateOp, list[Frame]]:
    START[0] = time.monotonic_ns()
    op = PrivacyGateOp("or1", "blank", result_interval_s=1.0, stale_after_ms=250, delay_s=delay_s)
    out: list[Frame] = []
    op.outputs["video"].taps.append(out.append)
    return op, out


def shown(frames: list[Frame]) -> list[int]:
    """Indices of the frames that went out with their picture (not withheld)."""
    return [f.index for f in frames if np.asarray(f.image).mean() > 100]


def test_frames_wait_for_the_result_after_them() -> None:
    op, out = gate()
    op.compute({"video": [frame(0), frame(500)], "results": [result(0, 3)]})
    assert out == []  # nothing yet says what comes after them
    op.compute({"video": [frame(1000), frame(1500)], "results": [result(1000, 3)]})
    assert shown(out) == [0, 500]  # in patient on both sides
    assert len(op._held) == 2  # 1000 and 1500 wait for the result after 1000


def test_a_brief_moment_out_of_patient_is_withheld_from_the_last_in_patient_result_on() -> None:
    op, out = gate()
    video = [frame(t) for t in range(0, 4000, 250)]
    op.compute({"video": video, "results": [result(0, 3)]})
    op.compute({"video": [], "results": [result(1000, 3)]})
    op.compute({"video": [], "results": [result(2000, 3, out_of_patient=0.9)]})  # step lags
    op.compute({"video": [], "results": [result(3000, 3)]})
    op.on_stop()
    assert [f.index for f in out] == [f.index for f in video]  # all out, in order
    # 1000..2999 touch the out-of-patient result at 2000 on one side or the other.
    assert shown(out) == [0, 250, 500, 750, 3000, 3250, 3500, 3750]
    assert op.frames_withheld == 8


def test_before_the_first_result_and_on_a_stale_one_it_fails_closed() -> None:
    op, out = gate(delay_s=0.05)
    op.compute({"video": [frame(0)], "results": []})
    time.sleep(0.1)
    op.on_idle()  # waited long enough with nothing before it: withheld
    op.compute({"video": [frame(100)], "results": [result(100, 5)]})
    op.compute({"video": [frame(3000)], "results": [result(3100, 5)]})  # 2.9 s after 100
    op.on_stop()
    assert [f.index for f in out] == [0, 100, 3000]
    assert shown(out) == [100]


def test_the_smoothed_step_out_of_patient_closes_it_too() -> None:
    op, out = gate()
    op.compute({"video": [frame(0), frame(500)], "results": [result(0, OUT_OF_PATIENT, 0.2)]})
    op.compute({"video": [], "results": [result(1000, 4)]})
    op.on_stop()
    assert shown(out) == []
