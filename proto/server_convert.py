"""Conversion between the job types of :mod:`orstream.jobs` and the ``orstream.v1`` messages of
the server's job service.

The server's servicer and its clients only call these functions, so neither spells a message
field by field. Results and partial results travel as JSON text: a kind's numbers keep their
type (an integer count stays an integer), which ``google.protobuf.Struct`` would not do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orstream.errors import OrstreamError
from orstream.jobs import InputSpec, Job, JobInput, JobSubmission, PartialResult
from orstream.proto.orstream.v1 import server_pb2


def submission_header_to_proto(submission: JobSubmission) -> server_pb2.SubmitJobRequest:
    """The first message of a ``SubmitJob`` stream."""
    header = server_pb2.SubmitJobHeader(
        kind=submission.kind,
        idempotency_key=submission.idempotency_key,
        params=dict(submission.params),
    )
    for spec in submission.inputs:
        if spec.path is not None:
            header.inputs.add(name=spec.name, path=spec.path)
        else:
            header.inputs.add(name=spec.name, upload_bytes=spec.upload_bytes)
    return server_pb2.SubmitJobRequest(header=header)


def submission_header_from_proto(message: server_pb2.SubmitJobRequest) -> JobSubmission:
    """The submission a ``SubmitJob`` stream's first message describes.

    Raises:
        OrstreamError: the message is not a header, or describes an invalid submission.
    """
    if message.WhichOneof("part") != "header":
        raise OrstreamError("a SubmitJob stream starts with its header")
    header = message.header
    specs = []
    for spec in header.inputs:
        source = spec.WhichOneof("source")
        if source == "path":
            specs.append(InputSpec(spec.name, path=spec.path))
        elif source == "upload_bytes":
            specs.append(InputSpec(spec.name, upload_bytes=spec.upload_bytes))
        else:
            raise OrstreamError(f"input {spec.name!r}: needs an upload size or a path")
    return JobSubmission(
        kind=header.kind,
        idempotency_key=header.idempotency_key,
        inputs=tuple(specs),
        params=dict(header.params),
    )


def chunk_to_proto(input_index: int, data: bytes) -> server_pb2.SubmitJobRequest:
    """A ``SubmitJob`` message carrying part of the ``input_index``-th input's bytes."""
    return server_pb2.SubmitJobRequest(chunk=server_pb2.InputChunk(input=input_index, data=data))


def chunk_from_proto(message: server_pb2.SubmitJobRequest) -> tuple[int, bytes]:
    """The input index and bytes of a chunk message.

    Raises:
        OrstreamError: the message is a second header.
    """
    if message.WhichOneof("part") != "chunk":
        raise OrstreamError("a SubmitJob stream has one header, then chunks")
    return message.chunk.input, message.chunk.data


def job_to_proto(job: Job) -> server_pb2.Job:
    """The message of a job."""
    return server_pb2.Job(
        id=job.id,
        kind=job.kind,
        idempotency_key=job.idempotency_key,
        inputs=[
            server_pb2.JobInput(
                name=item.name, size_bytes=item.size_bytes, uploaded=item.uploaded, path=item.path
            )
            for item in job.inputs
        ],
        params=dict(job.params),
        state=job.state,
        attempts=job.attempts,
        progress=job.progress,
        progress_message=job.progress_message,
        result_json="" if job.result is None else json.dumps(job.result),
        error=job.error,
        created_s=job.created_s,
        started_s=job.started_s,
        finished_s=job.finished_s,
    )


def job_from_proto(message: server_pb2.Job) -> Job:
    """The job a message describes."""
    return Job(
        id=message.id,
        kind=message.kind,
        idempotency_key=message.idempotency_key,
        inputs=tuple(
            JobInput(item.name, item.size_bytes, item.uploaded, item.path)
            for item in message.inputs
        ),
        params=dict(message.params),
        state=message.state,
        attempts=message.attempts,
        progress=message.progress,
        progress_message=message.progress_message,
        result=_object(message.result_json) if message.result_json else None,
        error=message.error,
        created_s=message.created_s,
        started_s=message.started_s,
        finished_s=message.finished_s,
    )


def partial_to_proto(partial: PartialResult) -> server_pb2.PartialResult:
    """The message of a partial result."""
    return server_pb2.PartialResult(
        attempt=partial.attempt, sequence=partial.sequence, json=json.dumps(partial.value)
    )


def partial_from_proto(message: server_pb2.PartialResult) -> PartialResult:
    """The partial result a message carries."""
    return PartialResult(message.attempt, message.sequence, _object(message.json))


def watch_event_to_proto(event: Job | PartialResult) -> server_pb2.WatchJobResponse:
    """A ``WatchJob`` message: the job as it stands, or one partial result."""
    if isinstance(event, Job):
        return server_pb2.WatchJobResponse(job=job_to_proto(event))
    return server_pb2.WatchJobResponse(partial=partial_to_proto(event))


def watch_event_from_proto(message: server_pb2.WatchJobResponse) -> Job | PartialResult:
    """The job or partial result a ``WatchJob`` message carries."""
    if message.WhichOneof("event") == "partial":
        return partial_from_proto(message.partial)
    return job_from_proto(message.job)


def list_request_to_proto(state: str = "", limit: int = 0) -> server_pb2.ListJobsRequest:
    """A ``ListJobs`` request: jobs in ``state`` ("" for all), at most ``limit`` (0: default)."""
    return server_pb2.ListJobsRequest(state=state, limit=limit)


def list_request_from_proto(message: server_pb2.ListJobsRequest) -> tuple[str, int]:
    """The state and limit of a ``ListJobs`` request."""
    return message.state, message.limit


def jobs_to_proto(jobs: list[Job]) -> server_pb2.ListJobsResponse:
    """The answer to ``ListJobs``."""
    return server_pb2.ListJobsResponse(jobs=[job_to_proto(job) for job in jobs])


def jobs_from_proto(message: server_pb2.ListJobsResponse) -> list[Job]:
    """The jobs a ``ListJobs`` answer lists."""
    return [job_from_proto(job) for job in message.jobs]


def _object(text: str) -> Mapping[str, Any]:
    """A JSON object from its text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise OrstreamError(f"a job result is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise OrstreamError("a job result is not a JSON object")
    return value
