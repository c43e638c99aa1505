"""The edge's outbox reaches a job server with TLS and tokens as the ``server:`` section says: an
operator token over TLS gets its hand-offs done; a token of too low a role is refused by the
server, and the item waits (retried, the reason recorded) rather than being dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from handoff_samples import GREEN, coloured, wait_for
from tls_certificates import make_pki

from orstream.access.tokens import add_token
from orstream.edge.app.config import ServerConfig
from orstream.edge.app.handoffs import open_handoffs
from orstream.handoffs import HandOffRequest
from orstream.server.job_server import JobServer, ServerSettings
from orstream.server.kinds.probe import ProbeKind
from orstream.server.kinds.registry import KindRegistry


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, Path]]]:
    """A job server with TLS and tokens: its address, its CA, a token file per role."""
    pki = make_pki(tmp_path)
    tokens = tmp_path / "tokens.yaml"
    files = {}
    for role in ("viewer", "operator"):
        files[role] = tmp_path / f"{role}.token"
        files[role].write_text(add_token(tokens, f"edge-{role}", role) + "\n")
    settings = ServerSettings(
        store=tmp_path / "store",
        address="127.0.0.1:0",
        tokens=tokens,
        tls_cert=pki / "server.pem",
        tls_key=pki / "server.key",
    )
    server = JobServer(settings, KindRegistry([ProbeKind()]))
    port = server.start()
    yield f"127.0.0.1:{port}", pki / "ca.pem", files
    server.stop(grace_s=0.5)


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_hand_offs_reach_a_server_with_tls_and_tokens(
    tmp_path: Path, secured: tuple[str, Path, dict[str, Path]], role: str
) -> None:
    address, ca, token_files = secured
    config = ServerConfig(
        address=address,
        tls_ca=ca,
        token_file=token_files[role],
        outbox=tmp_path / "outbox",
        retry={"initial_s": 0.05, "max_s": 0.2},
    )
    desk = open_handoffs(config, lambda item: None)
    buffer = desk.add_stream("or1")
    for index in range(10):
        buffer.add(coloured(index, GREEN), private=False)
    desk.start()
    try:
        item = desk.hand_off(HandOffRequest("probe", "or1", 1.0))
        if role == "operator":
            wait_for(lambda: desk.get(item.id).final, what="the item's end")
            done = desk.get(item.id)
            assert done.state == "succeeded" and done.result is not None
            assert done.result["frames"] == 10
        else:
            wait_for(lambda: desk.get(item.id).sends >= 2, what="two refused tries")
            refused = desk.get(item.id)
            assert refused.state == "waiting" and "PERMISSION_DENIED" in refused.last_error
    finally:
        desk.close()
