"""Who may use the dashboard: the gRPC API's tokens, by login or bearer header.

A browser logs in once by posting a token (``POST /api/login``); the edge answers with an
HttpOnly, SameSite=Strict cookie naming a session it keeps in memory (Secure over TLS), so the
token is neither kept by the page's script nor sent again. A script may instead send
``Authorization: Bearer TOKEN`` on each request. An unknown token or session is refused with
401; a role too low with 403; viewers watch, operators also prompt and ask the server tier,
as over gRPC.

Without tokens, as gRPC without tokens, everyone is let in as ``anonymous`` with every role
(the config allows that on loopback only, or with ``insecure``).
"""

from __future__ import annotations

import secrets
import threading
import time

from orstream.access.tokens import Principal, Tokens
from orstream.edge.service.audit import AuditLog

SESSION_COOKIE = "orstream_session"
SESSION_S = 12 * 3600.0
"""How long a login lasts: a long operating day; a new login after that."""
ANONYMOUS = Principal("anonymous", "admin")


class WebAccess:
    """Checks tokens and keeps the sessions of logged-in browsers.

    Args:
        tokens: the principals the edge knows (None: no login asked).
        audit: where refusals are written, if anywhere.
    """

    def __init__(self, tokens: Tokens | None, audit: AuditLog | None = None) -> None:
        self.tokens = tokens
        self._audit = audit
        self._sessions: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """No tokens: nobody needs to log in."""
        return self.tokens is None

    def login(self, token: str) -> str | None:
        """A new session id for a valid token (None, and audited, for a wrong one)."""
        principal = self._principal_of(token)
        if principal is None:
            self.refused("", "web/login", "UNAUTHENTICATED")
            return None
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
            self._sessions[session] = (principal, now + SESSION_S)
        return session

    def logout(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)

    def principal(self, authorization: str, session: str) -> Principal | None:
        """Who sends a request with this ``Authorization`` header and session cookie (None:
        nobody the edge knows)."""
        if self.tokens is None:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            return self._principal_of(token.strip())
        with self._lock:
            held = self._sessions.get(session)
        if held is None or held[1] < time.monotonic():
            return None
        return held[0]

    def allowed(self, principal: str, method: str) -> None:
        """Write a call that changes something (a prompt) to the audit log, as gRPC does."""
        if self._audit is not None:
            self._audit.record("prompt", principal, method=method)

    def refused(self, principal: str, method: str, code: str) -> None:
        """Write a refusal to the audit log, as gRPC's refusals are."""
        if self._audit is not None:
            self._audit.record("auth_refused", principal or "unknown", method=method, code=code)

    def _principal_of(self, token: str) -> Principal | None:
        if self.tokens is None:
            return ANONYMOUS
        return self.tokens.principal(token) if token else None
