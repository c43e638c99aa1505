"""``orstream server run`` as a real process: killed with SIGKILL in the middle of a job, then
started again on the same store, it runs the job again and records its result once; SIGTERM
stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_samples import write_video

from orstream.client.server_client import ServerClient
from orstream.jobs import Job, PartialResult
from orstream.server.store import DATABASE_NAME


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_run(address: str, store: Path) -> list[str]:
    """The command line of ``orstream server run`` on ``address`` with ``store``."""
    return [
        sys.executable, "-m", "orstream.cli", "server", "run", "--address", address,
        "--store", str(store),
    ]  # fmt: skip


class ServerProcess:
    """``orstream server run`` in a subprocess, ready once it printed its address."""

    def __init__(self, store: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [*server_run(f"127.0.0.1:{port}", store), "--workers", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "serving on" in line, self.process.stderr.read() if self.process.stderr else line

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for process in started:
        if process.process.poll() is None:
            os.kill(process.process.pid, signal.SIGCONT)
        process.end()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video whose probe takes about a second: long enough to be caught mid-job."""
    return write_video(
        tmp_path_factory.mktemp("long") / "long.mp4", frames=200, fps=25, size=(320, 240)
    )


def test_kill_9_mid_job_then_restart_records_the_result_once(
    tmp_path: Path, long_video: Path, processes: list[ServerProcess]
) -> None:
    store, port = tmp_path / "store", free_port()
    address = f"127.0.0.1:{port}"
    first = ServerProcess(store, port)
    processes.append(first)
    with ServerClient(address) as client:
        job_id, _ = client.submit("probe", [long_video], key="long-case")
        for event in client.watch(job_id):
            if isinstance(event, Job) and event.state == "running" and event.progress_message:
                # Freeze the server mid-job, check the store says so, then kill it outright.
                os.kill(first.process.pid, signal.SIGSTOP)
                break
    with sqlite3.connect(store / DATABASE_NAME) as db:
        state, attempts = db.execute(
            "SELECT state, attempts FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    assert (state, attempts) == ("running", 1), "the job ended before the kill"
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    assert first.process.returncode == -signal.SIGKILL

    second = ServerProcess(store, port)
    processes.append(second)
    with ServerClient(address) as client:
        assert client.submit("probe", [long_video], key="long-case") == (job_id, False)
        events = list(client.watch(job_id))
        final = client.get(job_id)
        assert len(client.list()) == 1
    assert (final.state, final.attempts) == ("succeeded", 2)
    assert final.result is not None and final.result["frames"] == 200
    reruns = [e for e in events if isinstance(e, PartialResult) and e.attempt == 2]
    assert [p.sequence for p in reruns] == list(range(final.result["windows"]))
    with sqlite3.connect(store / DATABASE_NAME) as db:
        rows = db.execute("SELECT state, attempts, result FROM jobs").fetchall()
        second_attempt = db.execute(
            "SELECT COUNT(*) FROM partials WHERE job_id = ? AND attempt = 2", (job_id,)
        ).fetchone()[0]
    assert len(rows) == 1 and rows[0][:2] == ("succeeded", 2)
    assert second_attempt == final.result["windows"]

    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(10) == 0
    assert second.process.stderr is not None
    assert "orstream server: stopping" in second.process.stderr.read()


def test_a_second_server_on_the_same_port_is_refused_with_one_line(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    port = free_port()
    processes.append(ServerProcess(tmp_path / "one", port))
    result = subprocess.run(
        server_run(f"127.0.0.1:{port}", tmp_path / "two"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"orstream: error: cannot listen for gRPC on 127.0.0.1:{port} "
        "(address in use or not resolvable)"
    )


def test_a_non_loopback_address_without_tls_and_tokens_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        server_run("0.0.0.0:0", tmp_path / "store"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "orstream: error: grpc address 0.0.0.0:0 is reachable from other machines: give TLS "
        "(--tls-cert, --tls-key) and --tokens, or --insecure to serve it unprotected"
    ]
    assert not (tmp_path / "store").exists()  # refused before anything was touched
