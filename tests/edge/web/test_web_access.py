"""The dashboard's access: the gRPC API's tokens, by login session or bearer header."""

from __future__ import annotations

from pathlib import Path

from orstream.access.tokens import Tokens, add_token
from orstream.edge.web.web_access import ANONYMOUS, WebAccess


def test_a_login_session_and_a_bearer_token_name_the_principal(tmp_path: Path) -> None:
    file = tmp_path / "tokens.yaml"
    token = add_token(file, "or3-wall", "viewer")
    access = WebAccess(Tokens.load(file))
    assert access.login("wrong") is None
    session = access.login(token)
    assert session is not None
    assert access.principal("", session).name == "or3-wall"  # type: ignore[union-attr]
    assert access.principal(f"Bearer {token}", "").role == "viewer"  # type: ignore[union-attr]
    assert access.principal("Bearer wrong", session) is None  # a bad header is not passed over
    assert access.principal("", "made-up") is None
    access.logout(session)
    assert access.principal("", session) is None


def test_without_tokens_everyone_comes_in_as_gRPC_lets_them() -> None:
    access = WebAccess(None)
    assert access.open
    assert access.principal("", "") == ANONYMOUS
    assert access.login("anything") is not None
