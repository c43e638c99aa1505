"""How many gRPC calls each method got, by status code: a server interceptor that counts.

Every call is counted once it ends, with the code it ended with: OK, the code a servicer
aborted with, CANCELLED when the client went away mid-stream, UNKNOWN for an exception that is
a bug. The metrics endpoint reads the counts (``orstream_grpc_requests_total``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc


class RequestCounts(grpc.ServerInterceptor):
    """Counts calls per (method, code); install with ``grpc.server(interceptors=[...])``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def snapshot(self) -> dict[tuple[str, str], int]:
        """(method, code name) -> calls so far; the method as ``Service/Method`` without the
        package, e.g. ``EdgeService/Prompt``."""
        with self._lock:
            return dict(self._counts)

    def _count(self, method: str, code: grpc.StatusCode | None) -> None:
        key = (method.rsplit(".", 1)[-1].lstrip("/"), (code or grpc.StatusCode.OK).name)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, handler.unary_stream))
        return handler  # no client-streaming method is served

    def _unary(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                response = behaviour(request, context)
            except BaseException:
                self._count(method, context.code() or grpc.StatusCode.UNKNOWN)
                raise
            self._count(method, context.code())
            return response

        return counted

    def _stream(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def counted(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            ended = False
            try:
                yield from behaviour(request, context)
                ended = True
            except GeneratorExit:  # the client went away mid-stream
                self._count(method, grpc.StatusCode.CANCELLED)
                raise
            except BaseException:
                self._count(method, context.code() or grpc.StatusCode.UNKNOWN)
                raise
            if ended:
                code = context.code() if context.is_active() else grpc.StatusCode.CANCELLED
                self._count(method, code)

        return counted
