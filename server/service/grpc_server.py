"""The server tier's gRPC server: ``orstream.v1.ServerService`` plus ``grpc.health.v1``.

A synchronous gRPC server on its own thread pool (each ``WatchJob`` and each upload holds a
thread while it lasts). Health is SERVING for ``""`` and ``orstream.v1.ServerService`` from
start until ``stop``, which turns it NOT_SERVING first, refuses new calls, ends open watches
(their clients see UNAVAILABLE and may watch again after a restart) and drains the rest.

With tokens every call but health needs a bearer token of its method's role
(:mod:`orstream.server.service.roles`); with TLS it serves TLS only. Whether an address may be
served without them is :class:`~orstream.server.job_server.ServerSettings`'s to check.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orstream.access.server_tls import ServerTls, add_port, server_options
from orstream.access.token_auth import TokenAuth
from orstream.access.tokens import Tokens
from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import server_pb2_grpc
from orstream.server.job_service import JobService
from orstream.server.service.roles import METHOD_ROLES
from orstream.server.service.servicer import SERVICE_NAME, ServerServicer

DEFAULT_ADDRESS = "127.0.0.1:50061"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message sent or received: an upload chunk is far smaller."""
MAX_WATCHERS = 16
_UNARY_WORKERS = 8
"""Server threads kept free of watches for submissions, reads, cancels and health checks."""
_STOP_SLACK_S = 1.0


class JobGrpcServer:
    """Serves a :class:`JobService` over gRPC.

    Args:
        service: the jobs.
        address: ``HOST:PORT``; port 0 picks a free port.
        max_watchers: ``WatchJob`` streams served at once.
        tokens: when given, every call but health needs a bearer token of its method's role.
        tls: when given, serve TLS only.
    """

    def __init__(
        self,
        service: JobService,
        address: str = DEFAULT_ADDRESS,
        max_watchers: int = MAX_WATCHERS,
        *,
        tokens: Tokens | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.address = address
        self._tls = tls
        self._auth = [] if tokens is None else [TokenAuth(tokens, METHOD_ROLES)]
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
            interceptors=self._auth,
            options=server_options(MAX_MESSAGE_BYTES),
        )
        server_pb2_grpc.add_ServerServiceServicer_to_server(self._servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        try:
            port = add_port(server, self.address, self._tls)
        except OrstreamError:
            executor.shutdown(wait=False)
            raise
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
