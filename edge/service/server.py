"""The edge runtime's gRPC server: ``orstream.v1.EdgeService`` plus ``grpc.health.v1``.

A synchronous gRPC server on its own thread pool: the runtime publishes results from its own
threads into the :class:`~orstream.edge.service.result_hub.ResultHub` and starts and stops the
server from its main thread. Health starts NOT_SERVING; the runtime calls ``set_serving(True)``
once its sources play and its models serve, and ``set_serving(False)`` when a model fails or no
stream delivers. Each stream has a health of its own, ``stream/<id>`` (``set_stream_health``):
SERVING while its source delivers, NOT_SERVING while it is stalled, reconnecting or over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orstream.access.server_tls import ServerTls, add_port, server_options
from orstream.access.tokens import Tokens
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.video_text_model import VideoTextModel
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.service.audit import AuditLog
from orstream.edge.service.auth import edge_token_auth
from orstream.edge.service.message_limits import MessageLimits
from orstream.edge.service.request_counts import RequestCounts
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.servicer import SERVICE_NAME, EdgeService
from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import edge_pb2_grpc
from orstream.status import RuntimeStatus, stream_health_name

DEFAULT_ADDRESS = "127.0.0.1:50051"


MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_UNARY_WORKERS = 4
"""Server threads kept free of subscriptions for GetStatus, GetTimeline and health checks."""
MAX_PROMPTS = 2
"""``Prompt`` calls worked on at once by default: each holds a core while its decoder runs."""
_STOP_SLACK_S = 1.0
"""How long past the grace ``stop`` waits for gRPC to cancel what the grace did not end."""


class EdgeGrpcServer:
    """Serves a runtime's status, results and timelines over gRPC.

    Args:
        hub: where the runtime publishes its results.
        status: returns a fresh snapshot of the runtime (called on every ``GetStatus``).
        address: ``HOST:PORT`` to listen on; port 0 picks a free port.
        reflection: also serve gRPC server reflection (for grpcurl and similar tools).
        max_message_bytes: largest message sent or received.
        max_subscribers: ``Subscribe`` streams served at once; more are refused with
            RESOURCE_EXHAUSTED.
        max_subscribers_per_client: of those, how many one caller may hold (a token's
            principal, or a peer host without tokens: :mod:`orstream.access.caller`).
        subscriber_buffer: results buffered per subscriber before its oldest is dropped.
        prompter: answers ``Prompt`` on recent frames (None: no segmenter).
        video_text: answers ``Search`` and ``SetPrompts`` (None: no video-text model).
        max_prompts: ``Prompt`` calls worked on at once; more are refused at once with
            RESOURCE_EXHAUSTED (fewer than the server threads kept for unary calls, so
            ``GetStatus`` and health always find one).
        tokens: when given, every call but health needs a bearer token of the role its method
            needs (:mod:`orstream.edge.service.auth`).
        tls: when given, serve TLS only (:class:`ServerTls`).
        audit: where refused calls and prompts are written, if anywhere.
        handoffs: answers the hand-off calls (None: the edge hands nothing to a server).
    """

    def __init__(
        self,
        hub: ResultHub,
        status: Callable[[], RuntimeStatus],
        address: str = DEFAULT_ADDRESS,
        reflection: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        *,
        max_subscribers: int = 16,
        max_subscribers_per_client: int = 4,
        subscriber_buffer: int = 64,
        prompter: FramePrompter | None = None,
        video_text: VideoTextModel | None = None,
        max_prompts: int = MAX_PROMPTS,
        tokens: Tokens | None = None,
        tls: ServerTls | None = None,
        audit: AuditLog | None = None,
        handoffs: HandOffDesk | None = None,
    ) -> None:
        self._tls = tls
        if not 1 <= max_prompts < _UNARY_WORKERS:
            raise OrstreamError(f"max_prompts must be 1 to {_UNARY_WORKERS - 1}, not {max_prompts}")
        self.address = address
        self._reflection = reflection
        self._max_message_bytes = max_message_bytes
        self._max_subscribers = max_subscribers
        self._service = EdgeService(
            hub,
            status,
            max_subscribers,
            subscriber_buffer,
            prompter,
            max_prompts,
            max_subscribers_per_client,
            video_text,
            handoffs,
        )
        self._health = health.HealthServicer()
        auth = tokens is not None or audit is not None
        self._auth = [edge_token_auth(tokens, audit)] if auth else []
        self.requests = RequestCounts()
        """Calls per method and status code, for the metrics."""
        self._lock = threading.Lock()
        self._serving = False
        self._apply_health()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.port: int | None = None
        self._stopped = False

    def start(self) -> int:
        """Listen and serve; returns the bound port.

        Raises:
            OrstreamError: when the address cannot be bound, or reflection was asked for
                without the grpcio-reflection package.
        """
        if self._server is not None or self._stopped:
            raise RuntimeError("an edge gRPC server starts once")
        reflection = _reflection_module() if self._reflection else None
        executor = ThreadPoolExecutor(
            max_workers=self._max_subscribers + _UNARY_WORKERS, thread_name_prefix="edge-grpc"
        )
        server = grpc.server(
            executor,
            interceptors=[self.requests, MessageLimits(), *self._auth],
            options=server_options(self._max_message_bytes),
        )
        edge_pb2_grpc.add_EdgeServiceServicer_to_server(self._service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if reflection is not None:
            reflection.enable_server_reflection(
                (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
        try:
            port = add_port(server, self.address, self._tls)
        except OrstreamError:
            executor.shutdown(wait=False)
            raise
        server.start()
        self._server, self._executor, self.port = server, executor, port
        return port

    def set_serving(self, serving: bool) -> None:
        """Report health SERVING or NOT_SERVING for ``""`` and ``orstream.v1.EdgeService``.

        May be called before ``start``; ignored once ``stop`` began.
        """
        with self._lock:
            self._serving = serving
            self._apply_health()

    def set_stream_health(self, stream_id: str, up: bool) -> None:
        """Report one stream's health (``stream/<id>``): SERVING while its source delivers."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        with self._lock:
            if not self._stopped:
                self._health.set(stream_health_name(stream_id), status)

    def stop(self, grace_s: float = 2.0) -> None:
        """Shut down: NOT_SERVING first, then end every subscription and drain.

        New calls are refused at once; calls in flight get ``grace_s`` to finish (open
        subscriptions end cleanly, their clients see the end of the stream) before gRPC
        cancels them. Returns within about ``grace_s`` + 1 s.
        """
        self._stopped = True
        self._health.enter_graceful_shutdown()
        server, executor = self._server, self._executor
        if server is None or executor is None:
            return
        self._server = self._executor = None
        done = server.stop(grace_s)
        self._service.close()
        done.wait(grace_s + _STOP_SLACK_S)
        executor.shutdown(wait=False)

    def _apply_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in (health.OVERALL_HEALTH, SERVICE_NAME):
            self._health.set(service, status)


def _reflection_module() -> ModuleType:
    """grpc_reflection's v1alpha module, or a clear error when the package is missing."""
    try:
        from grpc_reflection.v1alpha import reflection
    except ImportError:
        raise OrstreamError(
            "gRPC reflection needs the grpcio-reflection package (pip install grpcio-reflection)"
        ) from None
    return reflection
