"""The server tier's gRPC server: ``orstream.v1.ServerService`` plus ``grpc.health.v1``.

A synchronous gRPC server on its own thread pool (each ``WatchJob`` and each upload holds a
thread while it lasts). Health is SERVING for ``""`` and ``orstream.v1.ServerService`` from
start until ``stop``, which turns it NOT_SERVING first, refuses new calls, ends open watches
(their clients see UNAVAILABLE and may watch again after a restart) and drains the rest.

The job service has no authentication yet, so it listens on loopback addresses only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import server_pb2_grpc
from orstream.server.job_service import JobService
from orstream.server.service.servicer import SERVICE_NAME, ServerServicer

DEFAULT_ADDRESS = "127.0.0.1:50061"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message sent or received: an upload chunk is far smaller."""
MAX_WATCHERS = 16
_UNARY_WORKERS = 8
"""Server threads kept free of watches for submissions, reads, cancels and health checks."""
_STOP_SLACK_S = 1.0


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` listens on this machine only."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


class JobGrpcServer:
    """Serves a :class:`JobService` over gRPC.

    Args:
        service: the jobs.
        address: ``HOST:PORT`` on loopback; port 0 picks a free port.
        max_watchers: ``WatchJob`` streams served at once.

    Raises:
        OrstreamError: the address is not a loopback address.
    """

    def __init__(
        self, service: JobService, address: str = DEFAULT_ADDRESS, max_watchers: int = MAX_WATCHERS
    ) -> None:
        if not is_loopback(address):
            raise OrstreamError(
                f"{address}: the job service has no authentication yet, so it listens on "
                "loopback only (127.0.0.1, ::1 or localhost)"
            )
        self.address = address
        self._max_watchers = max_watchers
        self._servicer = ServerServicer(service, max_watchers)
        self._health = health.HealthServicer()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.port: int | None = None

    def start(self) -> int:
        """Listen and serve; returns the bound port.

        Raises:
            OrstreamError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("a job gRPC server starts once")
        executor = ThreadPoolExecutor(
            max_workers=self._max_watchers + _UNARY_WORKERS, thread_name_prefix="server-grpc"
        )
        server = grpc.server(
            executor,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                # Refuse a port another server listens on instead of sharing it silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        server_pb2_grpc.add_ServerServiceServicer_to_server(self._servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            port = server.add_insecure_port(self.address)
        except RuntimeError:
            executor.shutdown(wait=False)
            raise OrstreamError(
                f"cannot listen for gRPC on {self.address} (address in use or not resolvable)"
            ) from None
        server.start()
        for name in (health.OVERALL_HEALTH, SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._executor, self.port = server, executor, port
        return port

    def stop(self, grace_s: float = 2.0) -> None:
        """NOT_SERVING, then refuse new calls, end the watches and give the rest ``grace_s``."""
        self._health.enter_graceful_shutdown()
        server, executor = self._server, self._executor
        if server is None or executor is None:
            return
        self._server = self._executor = None
        done = server.stop(grace_s)
        self._servicer.close()
        done.wait(grace_s + _STOP_SLACK_S)
        executor.shutdown(wait=False)
