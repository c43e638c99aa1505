"""The largest request each method takes, checked before the request is parsed.

The server's ``max_message_mb`` bounds every message; a status query or a prompt needs far
less, and a request much larger than its method could ever need is someone probing or flooding.
:class:`MessageLimits` refuses it with RESOURCE_EXHAUSTED (naming the method's limit), without
parsing it, before any handler runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from orstream.access.token_auth import method_name

REQUEST_LIMITS = {
    "EdgeService/GetStatus": 1024,
    "EdgeService/GetTimeline": 1024,
    "EdgeService/Subscribe": 8 * 1024,
    "EdgeService/Prompt": 16 * 1024,
    "EdgeService/Search": 16 * 1024,
    "EdgeService/SetPrompts": 64 * 1024,
}
"""Bytes per request by method: about ten times what the largest valid request needs (a
prompt: a stream id, 32 clicks, a box and every class name of the segmenter; a search: one
text of at most 1000 characters; new prompts: one such text for each of the 15 steps,
held to four times it)."""


class _TooLarge:
    """What a request over its method's limit is parsed to: its size, nothing else."""

    def __init__(self, size: int) -> None:
        self.size = size


class MessageLimits(grpc.ServerInterceptor):
    """Refuses requests over their method's limit in :data:`REQUEST_LIMITS`."""

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        method = method_name(details.method)
        limit = REQUEST_LIMITS.get(method)
        if handler is None or limit is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(data: bytes) -> Any:
            return _TooLarge(len(data)) if len(data) > limit else parse(data)

        def refuse(request: _TooLarge, context: grpc.ServicerContext) -> NoReturn:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{method} takes requests of at most {limit} bytes, not {request.size}",
            )
            raise AssertionError("abort raises")

        if handler.unary_stream is not None:
            serve_stream = handler.unary_stream

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                if isinstance(request, _TooLarge):
                    refuse(request, context)
                yield from serve_stream(request, context)

            return handler._replace(request_deserializer=deserialize, unary_stream=stream)
        serve = handler.unary_unary

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _TooLarge):
                refuse(request, context)
            return serve(request, context)

        return handler._replace(request_deserializer=deserialize, unary_unary=unary)
