"""Fixtures of the job service tests: a sample video, and a real server on a free loopback
port with its store in the test's folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from job_samples import GateKind, sample_kinds, write_video

from orstream.server.job_server import JobServer, ServerSettings


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "case.mp4")


@pytest.fixture
def gate() -> Iterator[GateKind]:
    kind = GateKind()
    yield kind
    kind.opened.set()


@pytest.fixture
def start_server(tmp_path: Path, gate: GateKind) -> Iterator[Callable[..., tuple[JobServer, str]]]:
    """Starts a server (the kinds of ``sample_kinds``) with the given settings; stops it after."""
    servers: list[JobServer] = []

    def start(**settings: Any) -> tuple[JobServer, str]:
        values: dict[str, Any] = {"store": tmp_path / "store", "address": "127.0.0.1:0"}
        values.update(settings)
        server = JobServer(ServerSettings(**values), sample_kinds(gate))
        port = server.start()
        servers.append(server)
        return server, f"127.0.0.1:{port}"

    yield start
    gate.opened.set()
    for server in servers:
        server.stop(grace_s=0.5)
