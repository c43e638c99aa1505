"""The roles of the edge's gRPC methods, and its token check writing to the audit log.

The check itself is :class:`orstream.access.token_auth.TokenAuth`, shared with the server tier;
here the edge says which role each method needs (a method not listed needs ``admin``) and
records refusals and the calls that change something (any above ``viewer``) as prompts.
"""

from __future__ import annotations

import grpc

from orstream.access.token_auth import TokenAuth
from orstream.access.tokens import Tokens
from orstream.edge.service.audit import AuditLog

METHOD_ROLES = {
    "EdgeService/GetStatus": "viewer",
    "EdgeService/Subscribe": "viewer",
    "EdgeService/GetTimeline": "viewer",
    "EdgeService/Prompt": "operator",
    "EdgeService/Search": "viewer",
    "EdgeService/SetPrompts": "operator",
    "EdgeService/HandOff": "operator",
    "EdgeService/Ask": "operator",
    "EdgeService/GetHandOff": "viewer",
    "EdgeService/ListHandOffs": "viewer",
}


def edge_token_auth(tokens: Tokens | None, audit: AuditLog | None = None) -> TokenAuth:
    """The edge's token check (``tokens`` None: every call is let through and only audited).

    Args:
        tokens: the principals the edge knows.
        audit: where refusals and prompts are written, if anywhere.
    """
    if audit is None:
        return TokenAuth(tokens, METHOD_ROLES)
    log = audit

    def allowed(principal: str, method: str, needed: str) -> None:
        if needed != "viewer":
            log.record("prompt", principal, method=method)

    def refused(principal: str, method: str, code: grpc.StatusCode) -> None:
        log.record("auth_refused", principal or "unknown", method=method, code=code.name)

    return TokenAuth(tokens, METHOD_ROLES, allowed, refused)
