"""The page's state: made from the runtime status and results gRPC answers from, with the
overlay's rules for stale results, NO SIGNAL and out of patient."""

from __future__ import annotations

import json

from orstream.edge.web.dashboard_state import dashboard_state, hex_colour
from orstream.latency import LatencySummary
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus
from orstream.step_timeline import StepSegment

S = 1_000_000_000


def status(*sources: SourceStatus) -> RuntimeStatus:
    return RuntimeStatus(sources, (), (), LatencySummary.of([5.0, 7.0]), 10, 10, 3.0)


def result(stream_id: str, code: int, produced_s: float) -> FrameResult:
    return FrameResult(
        stream_id, 24, 2 * S, int((produced_s - 0.01) * S), int(produced_s * S), ("m@1",),
        step=StepResult(code, 0.9),
        instruments=InstrumentResult((16, -2), ((16, 0.8),)),
    )  # fmt: skip


def timeline(stream_id: str) -> tuple[StepSegment, ...]:
    if stream_id != "a":
        raise KeyError(stream_id)
    return (StepSegment(-1, 0, 11, 0, S), StepSegment(3, 12, 24, S, 2 * S))


def test_a_playing_stream_with_a_fresh_result() -> None:
    state = dashboard_state(
        status(SourceStatus("a", "phantom://", "playing", 12.0, 40)),
        {"a": result("a", 3, 10.0)},
        timeline,
        1.25,
        int(10.5 * S),
    )
    json.dumps(state, allow_nan=False)  # the page reads it as JSON
    assert state["frame_to_result_ms"] == {"p50": 6.0, "p99": 7.0, "count": 2}
    (stream,) = state["streams"]
    assert stream["signal"] and not stream["stale"] and not stream["out_of_patient"]
    assert stream["step"] == {
        "code": 3,
        "name": "Septum displacement",
        "confidence": 0.9,
        "colour": "#ffe119",
    }
    assert stream["result_latency_ms"] == 10.0 and stream["result_age_s"] == 0.5
    assert [(i["code"], i["name"]) for i in stream["instruments"]] == [(16, "Suction")]
    assert [(s["code"], s["start_s"], s["end_s"]) for s in stream["timeline"]] == [
        (-1, 0.0, 1.0),
        (3, 1.0, 2.0),
    ]


def test_an_old_result_is_stale_and_out_of_patient_is_said() -> None:
    state = dashboard_state(
        status(SourceStatus("a", "rtsp://cam", "playing", 12.0, 40)),
        {"a": result("a", -1, 10.0)},
        timeline,
        1.25,
        int(11.3 * S),
    )
    (stream,) = state["streams"]
    assert stream["stale"] and stream["out_of_patient"] and stream["signal"]


def test_a_silent_source_has_no_signal_and_its_result_is_stale() -> None:
    state = dashboard_state(
        status(
            SourceStatus("a", "rtsp://cam", "reconnecting", 0.0, 40, "connection refused"),
            SourceStatus("b", "rtsp://cam2", "starting", 0.0, 0),
        ),
        {"a": result("a", 3, 10.0)},
        timeline,
        1.25,
        int(10.1 * S),
    )
    lost, starting = state["streams"]
    assert not lost["signal"] and lost["stale"] and lost["error"] == "connection refused"
    assert starting["signal"] and starting["step"] is None and starting["timeline"] == []
    assert not starting["stale"]


def test_without_a_recognizer_nothing_is_stale_and_no_latency_is_made_up() -> None:
    empty = RuntimeStatus(
        (SourceStatus("a", "x", "playing", 1.0, 1),), (), (), LatencySummary.of([]), 1, 1, 1.0
    )
    state = dashboard_state(empty, {}, timeline, None, 0)
    assert state["frame_to_result_ms"] is None
    assert state["streams"][0]["stale"] is False


def test_colours_are_css_hex() -> None:
    assert hex_colour((230, 25, 75)) == "#e6194b"


def test_a_failed_model_is_named_on_its_own_stream_only() -> None:
    sources = (
        SourceStatus("a", "rtsp://cam", "playing", 24.0, 40),
        SourceStatus("b", "x", "playing", 24.0, 40),
    )
    models = (
        ModelStatus("pitvis", "1", "a", "onnxruntime-cpu", 1.0, "failed", 12, "engine lost"),
        ModelStatus("pitvis", "1", "b", "onnxruntime-cpu", 1.0, "serving", 40),
    )
    runtime = RuntimeStatus(sources, models, (), LatencySummary.of([5.0]), 10, 10, 3.0)
    a, b = dashboard_state(runtime, {}, timeline, 1.25, 10 * S)["streams"]
    assert a["model_failures"] == ["pitvis: engine lost"] and b["model_failures"] == []
