"""The ``ray`` engine on a real Ray instance the test starts on 127.0.0.1 with 2 CPUs: an
unreachable cluster refused in one line, a probe job watched to its result, a failing job, a
cancelled job whose replica is free again at once, and a job the server stopped during that a
new server runs again and records once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from job_samples import NapKind

from orstream.cli import main
from orstream.client.server_client import ServerClient
from orstream.jobs import Job, PartialResult
from orstream.server.job_server import JobServer, ServerSettings
from orstream.server.kinds.probe import ProbeKind
from orstream.server.kinds.registry import KindRegistry
from orstream.server.ray_executor import RaySettings

ray = pytest.importorskip("ray", reason="the ray engine needs Ray (pip install 'orstream[server]')")
pytest.importorskip("ray.serve", reason="the ray engine needs Ray Serve")

ONE_REPLICA = RaySettings(min_replicas=1, max_replicas=1, replica_cpus=0.5)
"""One replica per kind, so a job still running on it would hold up the next."""


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    # Replicas import the test's job kinds (job_samples) as the server's process does.
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    here = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, saved["PYTHONPATH"]]))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def ray_server(store: Path) -> tuple[JobServer, str]:
    settings = ServerSettings(
        store=store, address="127.0.0.1:0", engine="ray", workers=2, ray=ONE_REPLICA
    )
    server = JobServer(settings, KindRegistry([ProbeKind(), NapKind()]))
    port = server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def address(ray_instance: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, address = ray_server(tmp_path_factory.mktemp("ray") / "store")
    yield address
    server.stop(grace_s=1.0)


def wait_for(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_unreachable_ray_address_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # First in the module: the server connects only while this process has no Ray yet.
    assert not ray.is_initialized()
    store = tmp_path / "store"
    words = ["server", "run", "--engine", "ray", "--ray-address", "127.0.0.1:1"]
    code = main([*words, "--store", str(store), "--address", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot reach Ray at 127.0.0.1:1" in err


def test_a_probe_job_runs_on_its_replica_to_the_result(
    address: str, video: Path, tmp_path: Path
) -> None:
    with ServerClient(address) as client:
        job_id, _ = client.submit("probe", [video], params={"window_s": "1"})
        events = list(client.watch(job_id))
        final = events[-1]
        assert isinstance(final, Job) and final.state == "succeeded" and final.attempts == 1
        assert final.result is not None and final.result["frames"] == 30
        partials = [event for event in events if isinstance(event, PartialResult)]
        assert [p.value["black_frames"] for p in partials] == [0, 5, 10]
        damaged = tmp_path / "damaged.mp4"
        damaged.write_bytes(b"not a video at all")
        job_id, _ = client.submit("probe", [damaged])
        failed = list(client.watch(job_id))[-1]
        assert isinstance(failed, Job) and failed.state == "failed"
        assert "damaged.mp4" in failed.error and "internal error" not in failed.error


def test_a_cancelled_job_stops_on_its_replica(address: str) -> None:
    with ServerClient(address) as client:
        job_id, _ = client.submit("nap", params={"seconds": "60"})
        wait_for(lambda: client.get(job_id).progress > 0)
        assert client.cancel(job_id).state == "cancelled"
        # The only nap replica runs one job at a time: the next one finishing shows the
        # cancelled run let go of it.
        started = time.monotonic()
        next_id, _ = client.submit("nap", params={"seconds": "0.2"})
        final = list(client.watch(next_id))[-1]
        assert isinstance(final, Job) and final.state == "succeeded"
        assert final.result is not None and final.result["pid"] != os.getpid()
        assert time.monotonic() - started < 20
        assert client.get(job_id).state == "cancelled"


def test_a_job_the_server_stopped_during_runs_again_on_the_next_and_is_recorded_once(
    ray_instance: None, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    server, address = ray_server(store)
    try:
        with ServerClient(address) as client:
            job_id, _ = client.submit("nap", params={"seconds": "2"}, key="nap-restart")
            wait_for(lambda: client.get(job_id).progress > 0)
    finally:
        server.stop(grace_s=1.0)
    server, address = ray_server(store)
    try:
        with ServerClient(address) as client:
            final = list(client.watch(job_id))[-1]
            assert isinstance(final, Job)
            assert (final.state, final.attempts) == ("succeeded", 2)
            assert final.result is not None and final.result["slept_s"] == 2.0
            assert final.result["pid"] != os.getpid()  # it ran on a replica
            assert [job.id for job in client.list()] == [job_id]
    finally:
        server.stop(grace_s=1.0)
