"""The job service over real gRPC on loopback, with its store in SQLite files: submitting
(idempotent, refused early), watching to the final result, cancelling, the queue limit, upload
checks, server paths, health and a graceful stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from job_samples import GateKind

from orstream.client.server_client import ServerClient
from orstream.errors import OrstreamError
from orstream.jobs import Job, PartialResult
from orstream.proto.orstream.v1 import server_pb2, server_pb2_grpc
from orstream.server.job_server import JobServer

Start = Callable[..., tuple[JobServer, str]]


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_probe_job_streams_progress_partials_and_its_result(
    start_server: Start, video: Path, tmp_path: Path
) -> None:
    _, address = start_server()
    with ServerClient(address) as client:
        job_id, created = client.submit("probe", [video], key="case-1", params={"window_s": "1"})
        events = list(client.watch(job_id))
    # The upload is kept while the job may run, and removed once it ended.
    wait_for(lambda: not (tmp_path / "store" / "inputs" / job_id).exists())
    assert created
    assert isinstance(events[0], Job) and isinstance(events[-1], Job)
    final = events[-1]
    assert final.state == "succeeded" and final.attempts == 1 and final.progress == 1.0
    assert final.result is not None
    assert final.result["frames"] == 30 and final.result["width"] == 96
    assert final.result["black_frames"] == 15 and final.result["windows"] == 3
    partials = [event for event in events if isinstance(event, PartialResult)]
    assert [(p.attempt, p.sequence) for p in partials] == [(1, 0), (1, 1), (1, 2)]
    assert [p.value["black_frames"] for p in partials] == [0, 5, 10]
    assert sum(p.value["frames"] for p in partials) == 30
    assert final.inputs[0].name == "case.mp4" and final.inputs[0].uploaded
    assert final.inputs[0].size_bytes == video.stat().st_size


def test_the_same_key_makes_one_job(start_server: Start, video: Path) -> None:
    _, address = start_server()
    with ServerClient(address) as client:
        first = client.submit("probe", [video], key="case-2")
        again = client.submit("probe", [video], key="case-2")
        other = client.submit("probe", [video], key="case-3")
        assert first == (first[0], True) and again == (first[0], False)
        assert other[0] != first[0]
        assert sorted(job.idempotency_key for job in client.list()) == ["case-2", "case-3"]
        with pytest.raises(OrstreamError, match="ALREADY_EXISTS: idempotency key 'case-2'"):
            client.submit("gate", [video], key="case-2")


def test_unknown_kinds_jobs_and_bad_parameters_are_refused(
    start_server: Start, video: Path, tmp_path: Path
) -> None:
    _, address = start_server()
    other = tmp_path / "other.mp4"
    other.write_bytes(video.read_bytes())
    with ServerClient(address) as client:
        with pytest.raises(OrstreamError, match=r"INVALID_ARGUMENT: unknown job kind 'wsi'.*probe"):
            client.submit("wsi", [video])
        with pytest.raises(OrstreamError, match="INVALID_ARGUMENT: window_s 'soon'"):
            client.submit("probe", [video], params={"window_s": "soon"})
        with pytest.raises(OrstreamError, match="probe takes one video input, not 2"):
            client.submit("probe", [video, other], key="two")
        for call in (client.get, client.cancel, lambda job: list(client.watch(job))):
            with pytest.raises(OrstreamError, match="NOT_FOUND: no job 'nope'"):
                call("nope")
        assert client.list() == []


def test_a_file_that_is_not_a_video_fails_its_job_with_a_clear_error(
    start_server: Start, tmp_path: Path
) -> None:
    _, address = start_server()
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with ServerClient(address) as client:
        job_id, _ = client.submit("probe", [notes])
        final = list(client.watch(job_id))[-1]
    assert isinstance(final, Job) and final.state == "failed" and final.attempts == 1
    assert final.error.startswith("notes.mp4: not a video file")


def test_a_truncated_video_fails_its_job(start_server: Start, video: Path, tmp_path: Path) -> None:
    _, address = start_server()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with ServerClient(address) as client:
        job_id, _ = client.submit("probe", [cut])
        final = list(client.watch(job_id))[-1]
    assert isinstance(final, Job) and final.state == "failed"
    assert final.error.startswith("cut.mp4: ")
    assert "damaged" in final.error or "truncated" in final.error


def test_a_kind_that_fails_unexpectedly_fails_its_job_only(
    start_server: Start, video: Path
) -> None:
    _, address = start_server(workers=1)
    with ServerClient(address) as client:
        broken, _ = client.submit("unserializable", [video])
        final = list(client.watch(broken))[-1]
        assert isinstance(final, Job) and final.state == "failed"
        assert final.error.startswith("internal error: TypeError: Object of type object")
        probe, _ = client.submit("probe", [video])
        assert list(client.watch(probe))[-1].state == "succeeded"  # type: ignore[union-attr]


def test_cancel_stops_a_running_job(start_server: Start, video: Path, gate: GateKind) -> None:
    _, address = start_server()
    with ServerClient(address) as client:
        job_id, _ = client.submit("gate", [video])
        assert gate.started.wait(10)
        wait_for(lambda: client.get(job_id).progress_message == "waiting at the gate")
        cancelled = client.cancel(job_id)
        assert cancelled.state == "cancelled" and cancelled.error == "cancelled by a client"
        wait_for(lambda: gate.stopped == ["JobStopped"])
        gate.opened.set()
        assert client.get(job_id).state == "cancelled"
        assert client.cancel(job_id).state == "cancelled"
        # The worker is free again: the next job runs to its end.
        probe, _ = client.submit("probe", [video])
        assert list(client.watch(probe))[-1].state == "succeeded"  # type: ignore[union-attr]
        with pytest.raises(OrstreamError, match=r"FAILED_PRECONDITION: job \w+ already succeeded"):
            client.cancel(probe)


def test_a_full_queue_answers_resource_exhausted_at_once(
    start_server: Start, video: Path, gate: GateKind, tmp_path: Path
) -> None:
    _, address = start_server(workers=1, max_queued=1)
    with ServerClient(address) as client:
        running, _ = client.submit("gate", [video])
        assert gate.started.wait(10)
        queued, _ = client.submit("probe", [video])
        assert client.get(queued).state == "queued"
        assert (tmp_path / "store" / "inputs" / queued / video.name).is_file()
        started = time.monotonic()
        with pytest.raises(OrstreamError, match="RESOURCE_EXHAUSTED: the queue is full"):
            client.submit("probe", [video])
        assert time.monotonic() - started < 2.0
        # A known key is still answered; a cancelled job frees its place.
        assert client.submit("probe", [video], key=client.get(queued).idempotency_key)[1] is False
        client.cancel(queued)
        assert not (tmp_path / "store" / "inputs" / queued).exists()
        assert client.submit("probe", [video])[1]
        assert [job.state for job in client.list(state="queued")] == ["queued"]
        gate.opened.set()
        assert list(client.watch(running))[-1].state == "succeeded"  # type: ignore[union-attr]


def test_per_kind_concurrency(start_server: Start, video: Path, gate: GateKind) -> None:
    _, address = start_server(workers=2, concurrency={"gate": 1})
    with ServerClient(address) as client:
        first, _ = client.submit("gate", [video])
        second, _ = client.submit("gate", [video])
        probe, _ = client.submit("probe", [video])
        # The second worker is free, but gate may run one at a time: the probe overtakes.
        assert list(client.watch(probe))[-1].state == "succeeded"  # type: ignore[union-attr]
        assert (client.get(first).state, client.get(second).state) == ("running", "queued")
        gate.opened.set()
        for job_id in (first, second):
            assert list(client.watch(job_id))[-1].state == "succeeded"  # type: ignore[union-attr]


def test_uploads_are_checked_against_their_declared_size(
    start_server: Start, tmp_path: Path
) -> None:
    _, address = start_server(max_upload_bytes=1000)
    with grpc.insecure_channel(address) as channel:
        stub = server_pb2_grpc.ServerServiceStub(channel)

        def submit(declared: int, sent: bytes, key: str) -> grpc.RpcError:
            header = server_pb2.SubmitJobHeader(kind="probe", idempotency_key=key)
            header.inputs.add(name="case.mp4", upload_bytes=declared)
            requests = [server_pb2.SubmitJobRequest(header=header)]
            if sent:
                chunk = server_pb2.InputChunk(input=0, data=sent)
                requests.append(server_pb2.SubmitJobRequest(chunk=chunk))
            with pytest.raises(grpc.RpcError) as raised:
                stub.SubmitJob(iter(requests), timeout=5)
            return raised.value

        short = submit(10, b"12345", "short")
        assert short.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ended at 5 of 10 bytes" in short.details()
        long = submit(3, b"12345", "long")
        assert long.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "more than the 3 bytes declared" in long.details()
        huge = submit(5000, b"", "huge")
        assert huge.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 1000" in huge.details()
    with ServerClient(address) as client:
        assert client.list() == []
    # No upload is left behind.
    assert list((tmp_path / "store" / "uploads").iterdir()) == []


def test_server_paths_only_inside_allowed_folders(
    start_server: Start, video: Path, tmp_path: Path
) -> None:
    _, address = start_server(allowed_paths=(video.parent,))
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(video.read_bytes())
    with ServerClient(address) as client:
        job_id, _ = client.submit("probe", server_paths=[str(video)])
        final = list(client.watch(job_id))[-1]
        assert isinstance(final, Job) and final.state == "succeeded"
        assert final.inputs[0].path == str(video.resolve()) and not final.inputs[0].uploaded
        with pytest.raises(OrstreamError, match="is not inside a folder this server reads"):
            client.submit("probe", server_paths=[str(outside)])
        with pytest.raises(OrstreamError, match=r"no file \S+/missing\.mp4 on the server"):
            client.submit("probe", server_paths=[str(video.parent / "missing.mp4")])


def test_health_and_a_graceful_stop_that_queues_a_running_job_again(
    start_server: Start, video: Path, gate: GateKind, tmp_path: Path
) -> None:
    server, address = start_server()
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "orstream.v1.ServerService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    client = ServerClient(address)
    job_id, _ = client.submit("gate", [video])
    assert gate.started.wait(10)
    events: list[object] = []
    watching = threading.Thread(target=lambda: events.append(_watch_until_error(client, job_id)))
    watching.start()
    wait_for(lambda: client.get(job_id).state == "running")
    server.stop(grace_s=0.5)
    watching.join(10)
    client.close()
    assert gate.stopped == ["JobStopped"]
    assert "UNAVAILABLE" in str(events[0])
    # The next server runs the job again, as a second attempt.
    gate.started.clear()
    gate.opened.set()
    _, address = start_server()
    with ServerClient(address) as client:
        final = list(client.watch(job_id))[-1]
    assert isinstance(final, Job) and (final.state, final.attempts) == ("succeeded", 2)


def _watch_until_error(client: ServerClient, job_id: str) -> OrstreamError | None:
    try:
        for _ in client.watch(job_id):
            pass
    except OrstreamError as error:
        return error
    return None


def test_a_client_that_goes_away_mid_upload_leaves_nothing(
    start_server: Start, tmp_path: Path
) -> None:
    _, address = start_server()
    sent_first_chunk = threading.Event()
    release = threading.Event()

    def requests():  # type: ignore[no-untyped-def]
        header = server_pb2.SubmitJobHeader(kind="probe", idempotency_key="gone")
        header.inputs.add(name="case.mp4", upload_bytes=10_000)
        yield server_pb2.SubmitJobRequest(header=header)
        yield server_pb2.SubmitJobRequest(chunk=server_pb2.InputChunk(input=0, data=b"x" * 100))
        sent_first_chunk.set()
        release.wait(10)

    with grpc.insecure_channel(address) as channel:
        stub = server_pb2_grpc.ServerServiceStub(channel)
        call = stub.SubmitJob.future(requests(), timeout=10)
        assert sent_first_chunk.wait(10)
        uploads = tmp_path / "store" / "uploads"
        wait_for(lambda: uploads.is_dir() and any(uploads.iterdir()))
        call.cancel()
        release.set()
        wait_for(lambda: not any(uploads.iterdir()))
    with ServerClient(address) as client:
        assert client.list() == []
