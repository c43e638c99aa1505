"""A Python client of an orstream server's job service.

    with ServerClient("127.0.0.1:50061") as client:
        job_id, _ = client.submit("probe", [Path("case.mp4")], key="case-17-probe")
        for event in client.watch(job_id):
            ...  # Job (progress, and last its final state) or PartialResult
        job = client.get(job_id)

Every failure is an :class:`OrstreamError` of one line: the server cannot be reached, or a call
was refused (its gRPC status and the server's reason). A submission uploads its files in chunks
of :data:`CHUNK_BYTES`; with the same key, a retry after a lost answer gets the job the first
call made, never a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from orstream.client.bearer import BearerToken
from orstream.client.connection import open_channel
from orstream.errors import OrstreamError
from orstream.jobs import InputSpec, Job, JobSubmission, PartialResult
from orstream.proto.orstream.v1 import server_pb2
from orstream.proto.orstream.v1.server_pb2_grpc import ServerServiceStub
from orstream.proto.server_convert import (
    chunk_to_proto,
    job_from_proto,
    jobs_from_proto,
    list_request_to_proto,
    submission_header_to_proto,
    watch_event_from_proto,
)

DEFAULT_ADDRESS = "127.0.0.1:50061"
CHUNK_BYTES = 1024 * 1024
"""Bytes per upload message: well under gRPC's 4 MiB message limit."""


class ServerClient:
    """Calls an orstream server's ``ServerService``.

    Args:
        address: the server's ``HOST:PORT``.
        timeout_s: how long to wait for the server to be reachable, and for each unary call.
        token: a bearer token every call carries (a server with tokens needs one).
        tls_ca: connect over TLS, trusting this CA's certificates (PEM).

    Raises:
        OrstreamError: the server is not reachable within ``timeout_s``.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        timeout_s: float = 5.0,
        *,
        token: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._channel = open_channel(address, timeout_s, tls_ca)
        calls = self._channel
        if token is not None:
            calls = grpc.intercept_channel(self._channel, BearerToken(token))
        self._stub = ServerServiceStub(calls)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def submit(
        self,
        kind: str,
        uploads: Sequence[Path] = (),
        *,
        key: str | None = None,
        server_paths: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        upload_timeout_s: float | None = None,
    ) -> tuple[str, bool]:
        """Submit a job: ``uploads`` are sent, ``server_paths`` are read by the server itself
        (each input is named after its file's name).

        Args:
            kind: the job kind.
            uploads: local files to upload.
            key: the idempotency key (default: a new random key, so a new job).
            server_paths: files on the server's machine, below a folder it allows.
            params: the kind's parameters.
            upload_timeout_s: how long the whole call may take (default: no limit).

        Returns:
            The job's id, and whether this call made it (False: the key named it already).

        Raises:
            OrstreamError: a local file is missing, or the server refused the job.
        """
        for path in uploads:
            if not path.is_file():
                raise OrstreamError(f"{path}: no such file")
        specs = [InputSpec(path.name, upload_bytes=path.stat().st_size) for path in uploads]
        specs += [InputSpec(Path(path).name, path=path) for path in server_paths]
        submission = JobSubmission(
            kind=kind,
            idempotency_key=key or uuid.uuid4().hex,
            inputs=tuple(specs),
            params=dict(params or {}),
        )

        def requests() -> Iterator[server_pb2.SubmitJobRequest]:
            yield submission_header_to_proto(submission)
            for index, path in enumerate(uploads):
                with path.open("rb") as file:
                    while chunk := file.read(CHUNK_BYTES):
                        yield chunk_to_proto(index, chunk)

        with self._errors():
            answer = self._stub.SubmitJob(requests(), timeout=upload_timeout_s)
        return answer.job_id, answer.created

    def watch(self, job_id: str) -> Iterator[Job | PartialResult]:
        """The job now, then its progress and partial results, and last the job in its final
        state (the iterator ends there).

        Raises:
            OrstreamError: the job is unknown, or the server stopped or failed mid-watch.
        """
        with self._errors():
            for message in self._stub.WatchJob(server_pb2.WatchJobRequest(job_id=job_id)):
                yield watch_event_from_proto(message)

    def get(self, job_id: str) -> Job:
        """The job now.

        Raises:
            OrstreamError: the job is unknown.
        """
        with self._errors():
            answer = self._stub.GetJob(
                server_pb2.GetJobRequest(job_id=job_id), timeout=self.timeout_s
            )
        return job_from_proto(answer)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job and return it.

        Raises:
            OrstreamError: the job is unknown or already succeeded or failed.
        """
        with self._errors():
            answer = self._stub.CancelJob(
                server_pb2.CancelJobRequest(job_id=job_id), timeout=self.timeout_s
            )
        return job_from_proto(answer)

    def list(self, state: str = "", limit: int = 0) -> list[Job]:
        """The most recent jobs first, of one state or ("") all (``limit`` 0: the server's)."""
        with self._errors():
            answer = self._stub.ListJobs(
                list_request_to_proto(state, limit), timeout=self.timeout_s
            )
        return jobs_from_proto(answer)

    def _errors(self) -> _RpcErrors:
        return _RpcErrors(self.address)


class _RpcErrors:
    """Turns a failed call into an :class:`OrstreamError` naming the address and status."""

    def __init__(self, address: str) -> None:
        self._address = address

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, grpc.RpcError):
            code = error.code()
            details = error.details() or "no details"
            raise OrstreamError(f"{self._address}: {code.name}: {details}") from None
