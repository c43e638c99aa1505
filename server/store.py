"""The job store: jobs and their partial results in SQLite (WAL), under the server's ``--store``.

The database is the one truth about every job; workers and watchers read it, never a copy. It
makes a job survive a crash of the server (``kill -9`` included): a job the crash left
``running`` is queued again when the store is next opened, and its attempt counter tells the
old run from the new one. Every write a worker makes names its attempt and holds only while the
job is still ``running`` in that attempt (``UPDATE ... WHERE state = 'running' AND attempts =
?``), so a result is recorded exactly once: a run that was cancelled, or that a restart left
behind, cannot overwrite what happened since.

WAL with ``synchronous=NORMAL`` keeps every committed transaction through a crash of the
process; only a power loss may drop the last ones (the job then runs again, still recorded
once). One connection serves all threads, one statement at a time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError
from orstream.jobs import JOB_STATES, Job, JobInput, JobSubmission, PartialResult
from orstream.server.job_errors import JobOver, KeyInUse, QueueFull, UnknownJob

DATABASE_NAME = "jobs.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    inputs TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
                                         'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    progress_message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_s REAL NOT NULL,
    started_s REAL NOT NULL DEFAULT 0,
    finished_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, kind, created_s);
CREATE TABLE IF NOT EXISTS partials (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    attempt INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt, sequence)
);
"""
_COLUMNS = (
    "id, kind, idempotency_key, inputs, params, state, attempts, progress, progress_message, "
    "result, error, created_s, started_s, finished_s"
)


class JobStore:
    """The jobs of one server, in ``folder/jobs.sqlite``.

    Args:
        folder: the store's folder (made if missing).

    Raises:
        OrstreamError: the folder cannot be made or the file is not a job store.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                folder / DATABASE_NAME, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as error:
            raise OrstreamError(f"{folder}: cannot open the job store ({error})") from None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0

    def close(self) -> None:
        """Close the database (waking every waiter)."""
        with self._lock:
            self._db.close()
        self._notify()

    # -- clients' side ------------------------------------------------------------------------

    def add(
        self,
        job_id: str,
        submission: JobSubmission,
        inputs: Sequence[JobInput],
        max_queued: int,
    ) -> tuple[Job, bool]:
        """Queue a new job, or answer the job its idempotency key already names.

        Returns:
            The job, and whether this call made it.

        Raises:
            KeyInUse: the key names a job of another kind.
            QueueFull: ``max_queued`` jobs are queued already.
        """
        with self._transaction() as db:
            existing = self._by_key(db, submission.idempotency_key)
            if existing is not None:
                return _same_kind(existing, submission), False
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if queued >= max_queued:
                raise QueueFull(f"the queue is full ({queued} jobs wait); submit again later")
            db.execute(
                "INSERT INTO jobs (id, kind, idempotency_key, inputs, params, state, created_s) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (
                    job_id,
                    submission.kind,
                    submission.idempotency_key,
                    json.dumps([_input_row(item) for item in inputs]),
                    json.dumps(dict(submission.params)),
                    time.time(),
                ),
            )
            job = self._get(db, job_id)
        self._notify()
        return job, True

    def by_key(self, key: str, submission: JobSubmission) -> Job | None:
        """The job ``key`` names, if any (checked to be of the submission's kind).

        Raises:
            KeyInUse: the key names a job of another kind.
        """
        with self._lock:
            existing = self._by_key(self._db, key)
        return None if existing is None else _same_kind(existing, submission)

    def queued_count(self) -> int:
        """How many jobs wait."""
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            )

    def get(self, job_id: str) -> Job:
        """The job with this id.

        Raises:
            UnknownJob: no job has it.
        """
        with self._lock:
            return self._get(self._db, job_id)

    def recent(self, state: str = "", limit: int = 100) -> list[Job]:
        """The most recent jobs first, of one state or ("") all.

        Raises:
            OrstreamError: an unknown state or a limit below 1.
        """
        if state and state not in JOB_STATES:
            raise OrstreamError(f"unknown job state {state!r}: one of {', '.join(JOB_STATES)}")
        if limit < 1:
            raise OrstreamError(f"limit {limit}: at least 1")
        where, values = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created_s DESC, id LIMIT ?",
                (*values, limit),
            ).fetchall()
        return [_job(row) for row in rows]

    def partials(self, job_id: str, after: tuple[int, int] = (0, -1)) -> list[PartialResult]:
        """The job's partial results after (attempt, sequence) ``after``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT attempt, sequence, value FROM partials WHERE job_id = ? "
                "AND (attempt, sequence) > (?, ?) ORDER BY attempt, sequence",
                (job_id, *after),
            ).fetchall()
        return [
            PartialResult(attempt, sequence, json.loads(value)) for attempt, sequence, value in rows
        ]

    def cancel(self, job_id: str) -> tuple[Job, str]:
        """Mark a queued or running job cancelled.

        Returns:
            The job now, and its state before (a ``running`` job's worker must be told to
            stop).

        Raises:
            UnknownJob: no job has this id.
            JobOver: it already succeeded or failed.
        """
        with self._transaction() as db:
            job = self._get(db, job_id)
            if job.state in ("succeeded", "failed"):
                raise JobOver(f"job {job_id} already {job.state}; nothing to cancel")
            if job.state != "cancelled":
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', error = 'cancelled by a client', "
                    "finished_s = ? WHERE id = ?",
                    (time.time(), job_id),
                )
            cancelled = self._get(db, job_id)
        self._notify()
        return cancelled, job.state

    # -- workers' side ------------------------------------------------------------------------

    def queued_kinds(self) -> list[str]:
        """The kinds that have jobs waiting."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT kind FROM jobs WHERE state = 'queued'")
            return sorted(kind for (kind,) in rows.fetchall())

    def claim(self, kind: str) -> Job | None:
        """Start the oldest queued job of ``kind``: running, one more attempt, progress 0."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' AND kind = ? "
                "ORDER BY created_s, id LIMIT 1",
                (kind,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, progress = 0, "
                "progress_message = '', started_s = ? WHERE id = ?",
                (time.time(), row[0]),
            )
            job = self._get(db, row[0])
        self._notify()
        return job

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        """Record the attempt's progress; False when the attempt no longer runs."""
        return self._while_running(
            "UPDATE jobs SET progress = ?, progress_message = ?",
            (min(max(progress, 0.0), 1.0), message),
            job_id,
            attempt,
        )

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        """Record the attempt's next partial result; False when the attempt no longer runs."""
        with self._transaction() as db:
            if not _running(db, job_id, attempt):
                return False
            (count,) = db.execute(
                "SELECT COUNT(*) FROM partials WHERE job_id = ? AND attempt = ?",
                (job_id, attempt),
            ).fetchone()
            db.execute(
                "INSERT INTO partials (job_id, attempt, sequence, value) VALUES (?, ?, ?, ?)",
                (job_id, attempt, count, json.dumps(dict(value))),
            )
        self._notify()
        return True

    def succeed(self, job_id: str, attempt: int, result: Mapping[str, Any]) -> bool:
        """Record the attempt's result, once; False when the attempt no longer runs."""
        return self._while_running(
            "UPDATE jobs SET state = 'succeeded', progress = 1, progress_message = '', result = ?, "
            "finished_s = ?",
            (json.dumps(dict(result)), time.time()),
            job_id,
            attempt,
        )

    def fail(self, job_id: str, attempt: int, error: str) -> bool:
        """Record why the attempt failed; False when the attempt no longer runs."""
        return self._while_running(
            "UPDATE jobs SET state = 'failed', error = ?, finished_s = ?",
            (error, time.time()),
            job_id,
            attempt,
        )

    def requeue(self, job_id: str, attempt: int) -> bool:
        """Put a running attempt back in the queue (the server stops before it ends)."""
        return self._while_running(
            "UPDATE jobs SET state = 'queued', progress = 0, progress_message = ''",
            (),
            job_id,
            attempt,
        )

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """Queue again the jobs a crash left running; fail those that already had
        ``max_attempts`` (a job that brings the server down each time must not do it forever).

        Returns:
            The ids queued again, and the ids failed.
        """
        with self._transaction() as db:
            rows = db.execute("SELECT id, attempts FROM jobs WHERE state = 'running'").fetchall()
            requeued = [job_id for job_id, attempts in rows if attempts < max_attempts]
            failed = [job_id for job_id, attempts in rows if attempts >= max_attempts]
            for job_id in requeued:
                db.execute(
                    "UPDATE jobs SET state = 'queued', progress = 0, progress_message = '' "
                    "WHERE id = ?",
                    (job_id,),
                )
            for job_id in failed:
                db.execute(
                    "UPDATE jobs SET state = 'failed', error = ?, finished_s = ? WHERE id = ?",
                    (
                        f"the server stopped during each of its {max_attempts} attempts",
                        time.time(),
                        job_id,
                    ),
                )
        self._notify()
        return requeued, failed

    def unfinished_ids(self) -> set[str]:
        """The id of every job that is queued or running."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE state IN ('queued', 'running')")
            return {job_id for (job_id,) in rows.fetchall()}

    # -- change notification ------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """A number that grows with every change to the store."""
        with self._changed:
            return self._generation

    def wait_for_change(self, seen: int, timeout_s: float) -> int:
        """Wait until the store changed since generation ``seen`` (or ``timeout_s`` passed);
        returns the generation now."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout_s)
            return self._generation

    def touch(self) -> None:
        """Wake every waiter: something the database does not hold changed (a worker became
        free)."""
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # -- internals ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``), committed on success."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _while_running(
        self, update: str, values: tuple[Any, ...], job_id: str, attempt: int
    ) -> bool:
        with self._lock:
            changed = self._db.execute(
                f"{update} WHERE id = ? AND state = 'running' AND attempts = ?",
                (*values, job_id, attempt),
            ).rowcount
        if changed:
            self._notify()
        return changed == 1

    @staticmethod
    def _get(db: sqlite3.Connection, job_id: str) -> Job:
        row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(f"no job {job_id!r}")
        return _job(row)

    @staticmethod
    def _by_key(db: sqlite3.Connection, key: str) -> Job | None:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return None if row is None else _job(row)


def _running(db: sqlite3.Connection, job_id: str, attempt: int) -> bool:
    row = db.execute(
        "SELECT 1 FROM jobs WHERE id = ? AND state = 'running' AND attempts = ?", (job_id, attempt)
    ).fetchone()
    return row is not None


def _same_kind(job: Job, submission: JobSubmission) -> Job:
    if job.kind != submission.kind:
        raise KeyInUse(
            f"idempotency key {submission.idempotency_key!r} already names job {job.id} "
            f"of kind {job.kind!r}"
        )
    return job


def _input_row(item: JobInput) -> dict[str, Any]:
    return {
        "name": item.name,
        "size_bytes": item.size_bytes,
        "uploaded": item.uploaded,
        "path": item.path,
    }


def _job(row: tuple[Any, ...]) -> Job:
    (
        job_id,
        kind,
        key,
        inputs,
        params,
        state,
        attempts,
        progress,
        message,
        result,
        error,
        created_s,
        started_s,
        finished_s,
    ) = row
    return Job(
        id=job_id,
        kind=kind,
        idempotency_key=key,
        inputs=tuple(JobInput(**item) for item in json.loads(inputs)),
        params=json.loads(params),
        state=state,
        attempts=attempts,
        progress=progress,
        progress_message=message,
        result=None if result is None else json.loads(result),
        error=error,
        created_s=created_s,
        started_s=started_s,
        finished_s=finished_s,
    )
