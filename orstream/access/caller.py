"""Who is calling: the identity per-client limits count against.

With tokens, a call's caller is its token's principal (:mod:`orstream.access.token_auth` sets
it while the call's handler runs); without, it is the peer's address without its port, so one
machine opening many connections is still one caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import grpc

_PRINCIPAL: ContextVar[str] = ContextVar("orstream_grpc_principal", default="")


def caller(context: grpc.ServicerContext) -> str:
    """The calling principal (``token:NAME``), or the peer's host (``peer:HOST``)."""
    principal = _PRINCIPAL.get()
    if principal:
        return f"token:{principal}"
    peer = str(context.peer())  # e.g. ipv4:127.0.0.1:51234, ipv6:[::1]:51234, unix:/path
    host = peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
    return f"peer:{host}"


def as_principal(handler: Any, principal: str) -> Any:
    """``handler`` with its behaviour run as ``principal`` (seen by :func:`caller`)."""

    def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            token = _PRINCIPAL.set(principal)
            try:
                return behaviour(request, context)
            finally:
                _PRINCIPAL.reset(token)

        return unary

    def wrap_stream(behaviour: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token = _PRINCIPAL.set(principal)
            try:
                yield from behaviour(request, context)
            finally:
                _PRINCIPAL.reset(token)

        return stream

    if handler.unary_stream is not None:
        return handler._replace(unary_stream=wrap_stream(handler.unary_stream))
    if handler.unary_unary is not None:
        return handler._replace(unary_unary=wrap(handler.unary_unary))
    if handler.stream_unary is not None:
        return handler._replace(stream_unary=wrap(handler.stream_unary))
    return handler
