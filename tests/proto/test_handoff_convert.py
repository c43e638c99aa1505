"""Hand-off messages read back into the same core types; a Subscribe answer says whether it
carries a frame result or a hand-off update, and old readers of frame results are unaffected."""

from __future__ import annotations

from edge_samples import result

from orstream.handoffs import HandOffItem, HandOffRequest
from orstream.proto.convert import (
    handoff_from_proto,
    handoff_list_from_proto,
    handoff_list_to_proto,
    handoff_request_from_proto,
    handoff_request_to_proto,
    handoff_to_proto,
    subscribe_event_from_proto,
    subscribe_response_from_proto,
    subscribe_response_to_proto,
)

DONE = HandOffItem(
    id="a1",
    stream_id="endo",
    kind="probe",
    seconds=20.0,
    params={"window_s": "2"},
    origin="auto",
    idempotency_key="edge-x-a1",
    state="succeeded",
    frames=180,
    withheld_frames=20,
    clip_bytes=123456,
    sends=3,
    job_id="j7",
    job_state="succeeded",
    job_attempts=1,
    progress=1.0,
    result={"frames": 180, "windows": [{"window": 0}]},
    created_s=1.5,
    accepted_s=2.5,
    finished_s=3.5,
)


def test_items_and_requests_round_trip() -> None:
    waiting = HandOffItem(
        "b2", "endo", "probe", 5.0, {}, "client", "edge-x-b2", "waiting", last_error="down"
    )
    for item in (DONE, waiting):
        assert handoff_from_proto(handoff_to_proto(item)) == item
    assert handoff_list_from_proto(handoff_list_to_proto([DONE, waiting])) == [DONE, waiting]
    request = HandOffRequest("probe", "endo", 12.5, {"window_s": "1"})
    assert handoff_request_from_proto(handoff_request_to_proto(request)) == request


def test_a_subscribe_answer_carries_a_result_or_a_hand_off() -> None:
    frame_result = result(7)
    as_result = subscribe_response_to_proto(frame_result, 2)
    assert subscribe_event_from_proto(as_result) == (frame_result, 2)
    assert subscribe_response_from_proto(as_result) == (frame_result, 2)
    as_handoff = subscribe_response_to_proto(DONE, 0)
    assert as_handoff.WhichOneof("event") == "handoff"
    assert subscribe_event_from_proto(as_handoff) == (DONE, 0)
