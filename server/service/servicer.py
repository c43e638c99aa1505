"""``orstream.v1.ServerService``: a thin gRPC layer over :class:`JobService`.

It turns messages into job types and back (:mod:`orstream.proto.server_convert`) and refusals
into statuses: each :mod:`orstream.server.job_errors` refusal carries its code; any other
:class:`OrstreamError` (an invalid submission, a kind's check) is INVALID_ARGUMENT.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import NoReturn

import grpc

from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import server_pb2, server_pb2_grpc
from orstream.proto.server_convert import (
    chunk_from_proto,
    job_to_proto,
    jobs_to_proto,
    list_request_from_proto,
    submission_header_from_proto,
    watch_event_to_proto,
)
from orstream.server.job_service import JobService

SERVICE_NAME: str = server_pb2.DESCRIPTOR.services_by_name["ServerService"].full_name
"""``orstream.v1.ServerService``, as health checks name it."""
MAX_DETAILS = 400
"""The longest error detail sent back."""


class ServerServicer(server_pb2_grpc.ServerServiceServicer):
    """Serves the job service.

    Args:
        service: the jobs.
        max_watchers: ``WatchJob`` streams served at once (each holds a server thread); more
            are refused with RESOURCE_EXHAUSTED.
    """

    def __init__(self, service: JobService, max_watchers: int) -> None:
        self._service = service
        self._watchers = threading.BoundedSemaphore(max_watchers)
        self._max_watchers = max_watchers
        self._closing = threading.Event()

    def close(self) -> None:
        """End every open watch (the server is stopping): its client sees UNAVAILABLE."""
        self._closing.set()
        self._service.wake_watches()

    def SubmitJob(
        self, request_iterator: Iterator[server_pb2.SubmitJobRequest], context: grpc.ServicerContext
    ) -> server_pb2.SubmitJobResponse:
        try:
            first = next(request_iterator, None)
            if first is None:
                raise OrstreamError("a SubmitJob stream starts with its header")
            submission = submission_header_from_proto(first)
            chunks: Iterable[tuple[int, bytes]] = (
                chunk_from_proto(message) for message in request_iterator
            )
            job, created = self._service.submit(submission, chunks)
        except OrstreamError as error:
            _refuse(context, error)
        return server_pb2.SubmitJobResponse(job_id=job.id, created=created)

    def WatchJob(
        self, request: server_pb2.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[server_pb2.WatchJobResponse]:
        if not self._watchers.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server serves {self._max_watchers} watches at once; try again later",
            )
        try:
            events = self._service.watch(
                request.job_id, lambda: context.is_active() and not self._closing.is_set()
            )
            try:
                for event in events:
                    yield watch_event_to_proto(event)
            except OrstreamError as error:
                _refuse(context, error)
            if self._closing.is_set():
                context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    "the server is stopping; watch again after it restarts",
                )
        finally:
            self._watchers.release()

    def GetJob(
        self, request: server_pb2.GetJobRequest, context: grpc.ServicerContext
    ) -> server_pb2.Job:
        try:
            return job_to_proto(self._service.get(request.job_id))
        except OrstreamError as error:
            _refuse(context, error)

    def CancelJob(
        self, request: server_pb2.CancelJobRequest, context: grpc.ServicerContext
    ) -> server_pb2.Job:
        try:
            return job_to_proto(self._service.cancel(request.job_id))
        except OrstreamError as error:
            _refuse(context, error)

    def ListJobs(
        self, request: server_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> server_pb2.ListJobsResponse:
        try:
            return jobs_to_proto(self._service.recent(*list_request_from_proto(request)))
        except OrstreamError as error:
            _refuse(context, error)


def _refuse(context: grpc.ServicerContext, error: OrstreamError) -> NoReturn:
    code = getattr(grpc.StatusCode, getattr(error, "grpc_code", "INVALID_ARGUMENT"))
    message = str(error)
    context.abort(
        code, message if len(message) <= MAX_DETAILS else message[: MAX_DETAILS - 3] + "..."
    )
    raise AssertionError("abort raises")
