"""Bearer tokens and the roles they carry, as a YAML file of hashes that any tier checks.

The file never holds a token, only its SHA-256::

    tokens:
      - {name: or3-display, role: viewer, sha256: 9f86d0...}
      - {name: nurse-station, role: operator, sha256: 60303a...}

``orstream tokens add --file F --name N --role R`` makes a new random token, appends its hash
and prints the token once. Roles are ordered: ``viewer`` reads (status, results, timelines),
``operator`` also prompts, ``admin`` may do everything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from orstream.errors import OrstreamError

ROLES = ("viewer", "operator", "admin")
"""Each role may do what the ones before it may."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this principal's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The principals of a tokens file, looked up by token."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_hash = entries

    @classmethod
    def load(cls, path: Path) -> Tokens:
        """Read and check a tokens file.

        Raises:
            OrstreamError: the file is missing, not YAML, or an entry is malformed (a bad
                name, an unknown role, a hash that is not 64 hex digits, a name or hash twice).
        """
        if not path.is_file():
            raise OrstreamError(f"{path}: tokens file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise OrstreamError(f"{path}: not YAML ({str(error).splitlines()[0]})") from None
        listed = data.get("tokens", []) if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise OrstreamError(f"{path}: needs 'tokens:', a list of name, role, sha256")
        entries: dict[str, Principal] = {}
        names: set[str] = set()
        for number, entry in enumerate(listed, 1):
            if not isinstance(entry, dict) or set(entry) != {"name", "role", "sha256"}:
                raise OrstreamError(f"{path}: token {number} needs exactly name, role and sha256")
            name, role, digest = (str(entry[key]) for key in ("name", "role", "sha256"))
            if not NAME.fullmatch(name):
                raise OrstreamError(f"{path}: token {number}: bad name {name[:40]!r}")
            if role not in ROLES:
                raise OrstreamError(
                    f"{path}: token {name}: role must be {', '.join(ROLES)}, not {role[:20]!r}"
                )
            if not SHA256.fullmatch(digest):
                raise OrstreamError(f"{path}: token {name}: sha256 must be 64 hex digits")
            if name in names or digest in entries:
                raise OrstreamError(f"{path}: token {name}: its name or hash is listed twice")
            names.add(name)
            entries[digest] = Principal(name, role)
        return cls(entries)

    def principal(self, token: str) -> Principal | None:
        """Who ``token`` belongs to, or None (compared in constant time)."""
        digest = token_hash(token)
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def add_token(path: Path, name: str, role: str) -> str:
    """Append a new random token for ``name`` with ``role`` to the file (made if missing, kept
    readable by its owner only) and return the token: it is never stored.

    Raises:
        OrstreamError: a bad name or role, a name already listed, or an unreadable file.
    """
    if not NAME.fullmatch(name):
        raise OrstreamError(f"token name {name[:40]!r}: letters, digits, '.', '_', '-'")
    if role not in ROLES:
        raise OrstreamError(f"role must be {', '.join(ROLES)}, not {role[:20]!r}")
    listed: list[dict[str, str]] = []
    if path.exists():
        Tokens.load(path)  # refuse to append to a malformed file
        listed = yaml.safe_load(path.read_text(encoding="utf-8")).get("tokens", []) or []
        if any(entry["name"] == name for entry in listed):
            raise OrstreamError(f"{path}: a token named {name} is listed already")
    token = secrets.token_urlsafe(32)
    listed.append({"name": name, "role": role, "sha256": token_hash(token)})
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"tokens": listed}, handle, sort_keys=False)
    os.replace(partial, path)
    return token
