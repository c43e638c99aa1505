"""Tokens files: hashes only, strict entries, a new token printed once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orstream.access.tokens import Principal, Tokens, add_token, token_hash
from orstream.cli import main
from orstream.errors import OrstreamError


def test_added_tokens_are_stored_as_hashes_and_found_again(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    viewer = add_token(path, "or3-display", "viewer")
    operator = add_token(path, "nurse-station", "operator")
    text = path.read_text()
    assert viewer not in text and operator not in text and token_hash(viewer) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = Tokens.load(path)
    assert tokens.principal(viewer) == Principal("or3-display", "viewer")
    assert tokens.principal(operator) == Principal("nurse-station", "operator")
    assert tokens.principal("not-a-token") is None and tokens.principal("") is None
    with pytest.raises(OrstreamError, match="listed already"):
        add_token(path, "or3-display", "admin")


def test_roles_include_the_ones_below() -> None:
    assert Principal("a", "admin").may("operator") and Principal("a", "operator").may("viewer")
    assert not Principal("v", "viewer").may("operator")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tokens: 3\n", "a list"),
        ("tokens:\n  - {name: a, role: viewer}\n", "exactly name, role and sha256"),
        (f"tokens:\n  - {{name: a, role: root, sha256: {'a' * 64}}}\n", "role must be"),
        ("tokens:\n  - {name: a, role: viewer, sha256: abc}\n", "64 hex digits"),
        (f"tokens:\n  - {{name: 'a b', role: viewer, sha256: {'a' * 64}}}\n", "bad name"),
        (
            f"tokens:\n  - {{name: a, role: viewer, sha256: {'a' * 64}}}\n"
            f"  - {{name: b, role: admin, sha256: {'a' * 64}}}\n",
            "listed twice",
        ),
        ("tokens: [\n", "not YAML"),
    ],
)
def test_a_malformed_file_is_one_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(OrstreamError, match=words):
        Tokens.load(path)


def test_the_command_prints_the_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.yaml"
    assert main(["tokens", "add", "--file", str(path), "--name", "pacs", "--role", "admin"]) == 0
    printed = capsys.readouterr()
    token = printed.out.strip()
    assert Tokens.load(path).principal(token) == Principal("pacs", "admin")
    assert "only time it is shown" in printed.err
