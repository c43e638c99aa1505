"""The SQLite job store: idempotent adds, the queue limit, attempts, writes guarded by attempt
(a result recorded once), recovery after a crash, cancelling, partial results."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orstream.jobs import InputSpec, JobInput, JobSubmission
from orstream.server.job_errors import JobOver, KeyInUse, QueueFull, UnknownJob
from orstream.server.store import DATABASE_NAME, JobStore


def submission(key: str, kind: str = "probe") -> JobSubmission:
    return JobSubmission(kind, key, (InputSpec("case.mp4", upload_bytes=3),))


INPUTS = (JobInput("case.mp4", 3, True),)


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "store")


def test_the_store_is_sqlite_in_wal_mode(store: JobStore, tmp_path: Path) -> None:
    store.add("a", submission("k"), INPUTS, 10)
    with sqlite3.connect(tmp_path / "store" / DATABASE_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT id, state FROM jobs").fetchall() == [("a", "queued")]


def test_the_same_key_answers_the_same_job(store: JobStore) -> None:
    first, created = store.add("a", submission("k"), INPUTS, 10)
    again, created_again = store.add("b", submission("k"), INPUTS, 10)
    assert (created, created_again) == (True, False)
    assert again == first
    assert [job.id for job in store.recent()] == ["a"]
    with pytest.raises(KeyInUse, match="already names job a of kind 'probe'"):
        store.add("c", submission("k", kind="gate"), INPUTS, 10)


def test_a_full_queue_refuses(store: JobStore) -> None:
    store.add("a", submission("k1"), INPUTS, 2)
    store.add("b", submission("k2"), INPUTS, 2)
    with pytest.raises(QueueFull, match="queue is full"):
        store.add("c", submission("k3"), INPUTS, 2)
    # A key already queued still answers its job.
    assert store.add("d", submission("k1"), INPUTS, 2)[0].id == "a"


def test_a_result_is_recorded_once_by_the_attempt_that_runs(store: JobStore) -> None:
    store.add("a", submission("k"), INPUTS, 10)
    first = store.claim("probe")
    assert first is not None and first.attempts == 1 and first.state == "running"
    assert store.claim("probe") is None
    # A crash: the job is queued again and claimed by a second attempt.
    assert store.recover(max_attempts=3) == (["a"], [])
    second = store.claim("probe")
    assert second is not None and second.attempts == 2
    # The first attempt, still going somewhere, can no longer write anything.
    assert not store.report_progress("a", 1, 0.9, "old")
    assert not store.add_partial("a", 1, {"old": True})
    assert not store.succeed("a", 1, {"from": "attempt 1"})
    assert store.succeed("a", 2, {"from": "attempt 2"})
    assert not store.succeed("a", 2, {"from": "attempt 2 again"})
    assert not store.fail("a", 2, "late")
    job = store.get("a")
    assert (job.state, job.attempts, job.result, job.error) == (
        "succeeded",
        2,
        {"from": "attempt 2"},
        "",
    )


def test_recovery_fails_a_job_after_its_last_attempt(store: JobStore) -> None:
    store.add("a", submission("k"), INPUTS, 10)
    for _ in range(2):
        store.claim("probe")
        store.recover(max_attempts=2)
    job = store.get("a")
    assert job.state == "failed" and job.attempts == 2
    assert "during each of its 2 attempts" in job.error


def test_cancel(store: JobStore) -> None:
    store.add("a", submission("k1"), INPUTS, 10)
    store.add("b", submission("k2"), INPUTS, 10)
    job, before = store.cancel("a")
    assert (job.state, before) == ("cancelled", "queued")
    running = store.claim("probe")
    assert running is not None and running.id == "b"
    job, before = store.cancel("b")
    assert (job.state, before) == ("cancelled", "running")
    assert not store.succeed("b", 1, {"late": True})
    assert store.cancel("b") == (job, "cancelled")
    store.add("c", submission("k3"), INPUTS, 10)
    store.claim("probe")
    store.fail("c", 1, "broken")
    with pytest.raises(JobOver, match="already failed"):
        store.cancel("c")
    with pytest.raises(UnknownJob, match="no job 'zzz'"):
        store.cancel("zzz")


def test_partials_in_order_of_attempt_and_sequence(store: JobStore) -> None:
    store.add("a", submission("k"), INPUTS, 10)
    store.claim("probe")
    assert store.add_partial("a", 1, {"n": 0})
    assert store.add_partial("a", 1, {"n": 1})
    store.recover(max_attempts=3)
    store.claim("probe")
    assert store.add_partial("a", 2, {"n": 0})
    numbering = [(p.attempt, p.sequence, p.value["n"]) for p in store.partials("a")]
    assert numbering == [(1, 0, 0), (1, 1, 1), (2, 0, 0)]
    assert [(p.attempt, p.sequence) for p in store.partials("a", after=(1, 1))] == [(2, 0)]


def test_jobs_survive_reopening(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "store")
    store.add("a", submission("k"), INPUTS, 10)
    store.claim("probe")
    store.close()
    reopened = JobStore(tmp_path / "store")
    job = reopened.get("a")
    assert (job.state, job.attempts, job.inputs) == ("running", 1, INPUTS)


def test_listing_filters_by_state(store: JobStore) -> None:
    store.add("a", submission("k1"), INPUTS, 10)
    store.add("b", submission("k2"), INPUTS, 10)
    store.claim("probe")
    assert [job.id for job in store.recent("running")] == ["a"]
    assert [job.id for job in store.recent()] == ["b", "a"]
    with pytest.raises(Exception, match="unknown job state 'done'"):
        store.recent("done")
