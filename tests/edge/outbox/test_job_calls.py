"""The outbox's connection to a job server notices a server that vanishes without closing it:
through a proxy that stops passing bytes (a pulled cable), a watch fails with UNAVAILABLE within
a few keepalive periods instead of hanging until TCP gives up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_samples import free_port
from handoff_samples import ServerOnPort, wait_for

from orstream.edge.outbox.job_calls import CallFailed, JobServerCalls
from orstream.jobs import Job, JobSubmission


class FreezingProxy:
    """A loopback TCP proxy that can stop passing bytes while keeping every connection open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not self.frozen.is_set():  # frozen: swallowed, and nothing is closed
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerOnPort]:
    on_port = ServerOnPort(tmp_path / "server", free_port())
    on_port.start()
    yield on_port
    on_port.stop()


def test_a_watch_through_a_connection_that_goes_silent_fails_in_seconds(
    server: ServerOnPort,
) -> None:
    host, port = server.address.rsplit(":", 1)
    proxy = FreezingProxy((host, int(port)))
    calls = JobServerCalls(proxy.address, timeout_s=5.0, keepalive_s=1.0)
    try:
        job_id = calls.submit(JobSubmission("hold", "silent-1", ()), [], timeout_s=5.0)
        wait_for(server.hold.started.is_set, what="the held job's start")
        events = calls.watch(job_id)
        assert isinstance(next(events), Job)  # the connection works: the job as it is now
        proxy.frozen.set()
        frozen_at = time.monotonic()
        ended: list[BaseException | float] = []

        def follow() -> None:
            try:
                for _ in events:
                    pass  # the held job sends nothing more; only the pings can tell
            except CallFailed as error:
                ended.extend([error, time.monotonic() - frozen_at])

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        watcher.join(30)
    finally:
        calls.close()  # ends a watch still hanging
        proxy.close()
    assert ended, "the watch did not notice the silent connection in 30 s"
    error, took = ended
    assert isinstance(error, CallFailed) and error.code == "UNAVAILABLE"
    # A ping each second, unanswered for a second: measured 1.15 s.
    assert isinstance(took, float) and took < 6.0
