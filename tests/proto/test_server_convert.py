"""The job service's conversions survive the wire both ways; bad messages are refused."""

from __future__ import annotations

import pytest

from orstream.errors import OrstreamError
from orstream.jobs import InputSpec, Job, JobInput, JobSubmission, PartialResult
from orstream.proto.orstream.v1 import server_pb2
from orstream.proto.server_convert import (
    chunk_from_proto,
    chunk_to_proto,
    job_from_proto,
    job_to_proto,
    jobs_from_proto,
    jobs_to_proto,
    list_request_from_proto,
    list_request_to_proto,
    submission_header_from_proto,
    submission_header_to_proto,
    watch_event_from_proto,
    watch_event_to_proto,
)


def wire(message):  # type: ignore[no-untyped-def]
    return type(message).FromString(message.SerializeToString())


JOB = Job(
    id="abc",
    kind="probe",
    idempotency_key="case-1",
    inputs=(JobInput("case.mp4", 10, True), JobInput("b.mp4", 5, False, "/data/b.mp4")),
    params={"window_s": "2"},
    state="succeeded",
    attempts=2,
    progress=1.0,
    progress_message="",
    result={"frames": 30, "fps": 10.0, "codec": "h264", "nested": [1, {"a": None}]},
    created_s=1.5,
    started_s=2.5,
    finished_s=3.5,
)


def test_a_submission_header_round_trips() -> None:
    submission = JobSubmission(
        "probe",
        "key",
        (InputSpec("a.mp4", upload_bytes=0), InputSpec("b.mp4", path="/data/b.mp4")),
        {"window_s": "1"},
    )
    assert submission_header_from_proto(wire(submission_header_to_proto(submission))) == submission


def test_chunks_and_list_requests_round_trip() -> None:
    assert chunk_from_proto(wire(chunk_to_proto(3, b"\x00\x01"))) == (3, b"\x00\x01")
    assert list_request_from_proto(wire(list_request_to_proto("running", 7))) == ("running", 7)


def test_jobs_round_trip_with_their_result_types() -> None:
    back = job_from_proto(wire(job_to_proto(JOB)))
    assert back == JOB
    assert isinstance(back.result["frames"], int)  # type: ignore[index]
    queued = Job("q", "probe", "k", (), {}, "queued")
    assert jobs_from_proto(wire(jobs_to_proto([JOB, queued]))) == [JOB, queued]


def test_watch_events_round_trip() -> None:
    partial = PartialResult(2, 0, {"window": 0, "black_frames": 3})
    for event in (JOB, partial):
        assert watch_event_from_proto(wire(watch_event_to_proto(event))) == event


def test_bad_messages_are_refused() -> None:
    with pytest.raises(OrstreamError, match="starts with its header"):
        submission_header_from_proto(chunk_to_proto(0, b""))
    with pytest.raises(OrstreamError, match="one header, then chunks"):
        chunk_from_proto(server_pb2.SubmitJobRequest(header=server_pb2.SubmitJobHeader()))
    header = server_pb2.SubmitJobHeader(kind="probe", idempotency_key="k")
    header.inputs.add(name="a.mp4")
    with pytest.raises(OrstreamError, match="needs an upload size or a path"):
        submission_header_from_proto(server_pb2.SubmitJobRequest(header=header))
    with pytest.raises(OrstreamError, match="not a kind name"):
        submission_header_from_proto(
            server_pb2.SubmitJobRequest(header=server_pb2.SubmitJobHeader(kind="Bad kind"))
        )
    with pytest.raises(OrstreamError, match="not a JSON object"):
        job_from_proto(server_pb2.Job(id="x", kind="probe", state="succeeded", result_json="[1]"))
    with pytest.raises(OrstreamError, match=r"input name '\.\./etc'"):
        InputSpec("../etc", upload_bytes=1)
