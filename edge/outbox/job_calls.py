"""The outbox's calls to the job service: submit an item (its files streamed in chunks, so no
message nears gRPC's limit) and watch its job.

The edge speaks ``orstream.v1.ServerService`` itself, over proto and the core types only, as
the parts' dependency direction wants (``orstream.client`` is for users; it says the same
things). Every failure is a :class:`CallFailed` naming the gRPC status, which the sender reads
to tell a server that is away from one that refused for good.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc

from orstream.errors import OrstreamError
from orstream.jobs import Job, JobSubmission, PartialResult
from orstream.proto.orstream.v1 import server_pb2
from orstream.proto.orstream.v1.server_pb2_grpc import ServerServiceStub
from orstream.proto.server_convert import (
    chunk_to_proto,
    submission_header_to_proto,
    watch_event_from_proto,
)

CHUNK_BYTES = 1024 * 1024
"""Bytes per upload message, as the job service's own clients send them."""


class CallFailed(OrstreamError):
    """A call the job server did not answer as asked: ``code`` is the gRPC status name (e.g.
    ``UNAVAILABLE`` while it is away)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class JobServerCalls:
    """A connection to a job server.

    The connection is pinged every ``keepalive_s`` while idle or waiting on a job, so a server
    that vanishes without closing it (a pulled cable, a host that froze) fails the calls on it
    with UNAVAILABLE in seconds rather than when TCP gives up, and the sender tries again.

    Args:
        address: its ``HOST:PORT``.
        timeout_s: how long to wait for it to be reachable.
        token: a bearer token every call carries (an operator's: it submits).
        tls_ca: connect over TLS, trusting this CA's certificates (PEM).
        keepalive_s: seconds between pings; a ping unanswered for as long fails the calls.

    Raises:
        OrstreamError: the CA file is missing, or the server is not reachable in time.
    """

    def __init__(
        self,
        address: str,
        timeout_s: float = 5.0,
        token: str | None = None,
        tls_ca: Path | None = None,
        keepalive_s: float = 10.0,
    ) -> None:
        self.address = address
        options = [
            ("grpc.keepalive_time_ms", round(keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", round(keepalive_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # How long a ping's answer may take (gRPC's own default: a minute).
            ("grpc.http2.ping_timeout_ms", round(keepalive_s * 1000)),
        ]
        if tls_ca is None:
            self._channel = grpc.insecure_channel(address, options)
        else:
            if not tls_ca.is_file():
                raise OrstreamError(f"{tls_ca}: CA file not found")
            credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
            self._channel = grpc.secure_channel(address, credentials, options)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise OrstreamError(
                f"cannot reach the job server at {address} within {timeout_s:g} s"
            ) from None
        self._metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        self._stub = ServerServiceStub(self._channel)

    def submit(
        self, submission: JobSubmission, files: Sequence[Path], timeout_s: float | None
    ) -> str:
        """Submit a job whose uploaded inputs are ``files`` (in the submission's order);
        returns its id (the job the key made before, if it did).

        Raises:
            CallFailed: the server refused it or could not be reached.
        """

        def requests() -> Iterator[server_pb2.SubmitJobRequest]:
            yield submission_header_to_proto(submission)
            for index, path in enumerate(files):
                with path.open("rb") as file:
                    while chunk := file.read(CHUNK_BYTES):
                        yield chunk_to_proto(index, chunk)

        try:
            answer = self._stub.SubmitJob(requests(), timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as error:
            raise self._failed(error) from None
        return str(answer.job_id)

    def watch(self, job_id: str) -> Iterator[Job | PartialResult]:
        """The job now, then its progress and partial results, and last the job in its final
        state.

        Raises:
            CallFailed: the job is unknown, or the server stopped or failed mid-watch.
        """
        request = server_pb2.WatchJobRequest(job_id=job_id)
        try:
            for message in self._stub.WatchJob(request, metadata=self._metadata):
                yield watch_event_from_proto(message)
        except grpc.RpcError as error:
            raise self._failed(error) from None

    def close(self) -> None:
        """Close the channel: calls in flight end with CANCELLED."""
        self._channel.close()

    def _failed(self, error: grpc.RpcError) -> CallFailed:
        code = error.code()
        name = code.name if code is not None else "UNKNOWN"
        return CallFailed(f"{self.address}: {name}: {error.details() or 'no details'}", name)
