"""Step timeline: consecutive results with one step make one segment."""

from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.step_timeline import StepTimeline


def _result(index: int, step: int | None) -> FrameResult:
    return FrameResult(
        stream_id="s",
        index=index,
        pts_ns=index * 10**9,
        capture_ns=0,
        produced_ns=1,
        models=("m@1",),
        step=None if step is None else StepResult(step, 0.9),
        instruments=InstrumentResult((0, -2), ()),
    )


def test_segments_follow_step_changes() -> None:
    timeline = StepTimeline("s")
    for index, step in enumerate([-1, -1, 1, 1, 1, 2, 1]):
        timeline.add(_result(index, step))
    timeline.add(_result(7, None))
    segments = timeline.segments()
    assert [(s.code, s.start_index, s.end_index) for s in segments] == [
        (-1, 0, 1),
        (1, 2, 4),
        (2, 5, 5),
        (1, 6, 6),
    ]
    assert segments[1].duration_s == 2.0


def test_frame_result_kinds_and_latency() -> None:
    result = _result(3, 4)
    assert result.kinds == ("step", "instruments")
    assert result.step is not None and result.step.name == "sphenoid_sinus_clearance"
    assert result.latency_ms == 1e-6
