"""Who may call what: bearer tokens checked on every gRPC call but health's.

A call carries ``authorization: Bearer TOKEN`` metadata; the token's principal
(:class:`orstream.tokens.Tokens`) must have the role the method needs
(:data:`METHOD_ROLES`; a method not listed needs ``admin``). No token, or one the file does not
list: UNAUTHENTICATED. A role too low: PERMISSION_DENIED. Health checks stay open, so an
orchestrator can probe without a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from orstream.edge.service.audit import AuditLog
from orstream.edge.service.caller import as_principal
from orstream.tokens import Tokens

METHOD_ROLES = {
    "EdgeService/GetStatus": "viewer",
    "EdgeService/Subscribe": "viewer",
    "EdgeService/GetTimeline": "viewer",
    "EdgeService/Prompt": "operator",
    "EdgeService/Search": "viewer",
    "EdgeService/SetPrompts": "operator",
}
OPEN_SERVICES = ("/grpc.health.v1.Health/",)
"""Methods under these prefixes need no token."""


def method_name(full: str) -> str:
    """``/orstream.v1.EdgeService/Prompt`` -> ``EdgeService/Prompt``."""
    return full.rsplit(".", 1)[-1].lstrip("/")


class TokenAuth(grpc.ServerInterceptor):
    """Refuses calls without a token of the role their method needs, and writes refusals and
    prompts to the audit log.

    Args:
        tokens: the principals the server knows (None: no tokens asked, every call is let
            through as ``anonymous``; only the audit log is kept).
        audit: the audit log, if any.
    """

    def __init__(self, tokens: Tokens | None, audit: AuditLog | None = None) -> None:
        self.tokens = tokens
        self.audit = audit

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        method = method_name(details.method)
        if self.tokens is None:
            self._note("anonymous", method)
            return handler
        needed = METHOD_ROLES.get(method, "admin")
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
        self._note(principal.name, method)
        return as_principal(handler, principal.name)

    def _note(self, principal: str, method: str) -> None:
        if self.audit is not None and METHOD_ROLES.get(method, "admin") != "viewer":
            self.audit.record("prompt", principal, method=method)

    def _refused(
        self, handler: Any, principal: str, method: str, code: grpc.StatusCode, message: str
    ) -> Any:
        if self.audit is not None:
            self.audit.record("auth_refused", principal or "unknown", method=method, code=code.name)
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
    return handler._replace(unary_unary=refuse)
