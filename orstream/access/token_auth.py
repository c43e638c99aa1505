"""Who may call what: bearer tokens checked on every gRPC call but health's.

A call carries ``authorization: Bearer TOKEN`` metadata; the token's principal
(:class:`orstream.access.tokens.Tokens`) must have the role its method needs (the server's table of
method roles; a method not listed needs ``admin``, so a method added without a role is safe).
No token, or one the file does not list: UNAUTHENTICATED. A role too low: PERMISSION_DENIED.
Health checks stay open, so an orchestrator can probe without a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import grpc

from orstream.access.caller import as_principal
from orstream.access.tokens import Tokens

OPEN_SERVICES = ("/grpc.health.v1.Health/",)
"""Methods under these prefixes need no token."""

OnAllowed = Callable[[str, str, str], None]
"""Told ``(principal, method, role needed)`` of each call let through."""
OnRefused = Callable[[str, str, grpc.StatusCode], None]
"""Told ``(principal or "", method, status)`` of each call refused."""


def method_name(full: str) -> str:
    """``/orstream.v1.EdgeService/Prompt`` -> ``EdgeService/Prompt``."""
    return full.rsplit(".", 1)[-1].lstrip("/")


class TokenAuth(grpc.ServerInterceptor):
    """Refuses calls without a token of the role their method needs.

    Args:
        tokens: the principals the server knows (None: no tokens asked, every call is let
            through as ``anonymous``, so a server can still audit its calls).
        roles: the role each method needs, by ``Service/Method``.
        on_allowed: told of each call let through (e.g. to audit it).
        on_refused: told of each call refused.
    """

    def __init__(
        self,
        tokens: Tokens | None,
        roles: Mapping[str, str],
        on_allowed: OnAllowed | None = None,
        on_refused: OnRefused | None = None,
    ) -> None:
        self.tokens = tokens
        self.roles = roles
        self._on_allowed = on_allowed
        self._on_refused = on_refused

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        method = method_name(details.method)
        needed = self.roles.get(method, "admin")
        if self.tokens is None:
            self._allowed("anonymous", method, needed)
            return handler
        header = dict(details.invocation_metadata or ()).get("authorization", "")
        scheme, _, token = str(header).partition(" ")
        principal = self.tokens.principal(token) if scheme.lower() == "bearer" and token else None
        if principal is None:
            return self._refused(
                handler,
                "",
                method,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid bearer token is needed (authorization: Bearer TOKEN)",
            )
        if not principal.may(needed):
            return self._refused(
                handler,
                principal.name,
                method,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{principal.name} ({principal.role}) may not call {method}: it needs {needed}",
            )
        self._allowed(principal.name, method, needed)
        return as_principal(handler, principal.name)

    def _allowed(self, principal: str, method: str, needed: str) -> None:
        if self._on_allowed is not None:
            self._on_allowed(principal, method, needed)

    def _refused(
        self, handler: Any, principal: str, method: str, code: grpc.StatusCode, message: str
    ) -> Any:
        if self._on_refused is not None:
            self._on_refused(principal, method, code)
        return _refused(handler, code, message)


def _refused(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    """``handler`` with its behaviour replaced by a refusal of the same kind (unary, stream)."""

    def refuse(request: Any, context: grpc.ServicerContext) -> NoReturn:
        context.abort(code, message)
        raise AssertionError("abort raises")

    def refuse_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        refuse(request, context)
        yield  # a generator, as a streaming behaviour must be

    if handler.unary_stream is not None:
        return handler._replace(unary_stream=refuse_stream)
    if handler.stream_unary is not None:
        return handler._replace(stream_unary=refuse)
    return handler._replace(unary_unary=refuse)
