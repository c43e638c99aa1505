"""What every engine shares: claiming queued jobs as workers free up, and recording how each
run ended.

A scheduler thread claims queued jobs from the store, oldest first, while a worker is free
(``workers`` in all) and the job's kind has fewer than its limit running (``concurrency``,
by kind; a kind not named may use every worker). It wakes whenever the store changes: a job
submitted, finished or cancelled. A worker thread hands the job to the engine
(:meth:`JobScheduler._execute`) and records the outcome through the store's attempt-guarded
writes, so a cancelled run or one a restart left behind records nothing: the server process is
the store's only writer, whichever engine runs the work.

Stopping asks every run to end at its next report and queues its job again, so the next
start runs it anew; a crash does the same through :meth:`JobStore.recover`.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError
from orstream.jobs import Job
from orstream.server.kinds.job_kind import JobContext, JobStopped
from orstream.server.kinds.registry import KindRegistry
from orstream.server.store import JobStore
from orstream.server.uploads import UploadArea

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
SHUTDOWN = "the server is stopping"
_IDLE_WAKE_S = 1.0
"""The scheduler looks at the queue at least this often, even when nothing signals a change."""


class JobScheduler(ABC):
    """Runs queued jobs, each in a worker thread that waits for the engine to run it.

    Args:
        store: the job store.
        kinds: the kinds it runs.
        uploads: where uploaded inputs are kept.
        workers: jobs run at once, all kinds together.
        concurrency: the most jobs of a kind run at once, by kind name.

    Raises:
        OrstreamError: ``workers`` below 1, a limit below 1, or a limit for an unknown kind.
    """

    def __init__(
        self,
        store: JobStore,
        kinds: KindRegistry,
        uploads: UploadArea,
        workers: int,
        concurrency: Mapping[str, int] | None = None,
    ) -> None:
        if workers < 1:
            raise OrstreamError(f"workers {workers}: at least 1")
        limits = dict(concurrency or {})
        for name, limit in limits.items():
            kinds.get(name)
            if limit < 1:
                raise OrstreamError(f"concurrency of {name}: {limit}, at least 1")
        self._store = store
        self._kinds = kinds
        self._uploads = uploads
        self._workers = workers
        self._limits = limits
        self._lock = threading.Lock()
        self._running: dict[str, JobContext] = {}
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job-worker")
        self._scheduler = threading.Thread(target=self._schedule, name="job-scheduler", daemon=True)

    def start(self) -> None:
        """Start claiming queued jobs."""
        self._scheduler.start()

    def cancel(self, job_id: str) -> None:
        """Ask a running job's worker to stop (its state is already ``cancelled``)."""
        with self._lock:
            context = self._running.get(job_id)
        if context is not None:
            context.stop(CANCELLED)

    def stop(self, grace_s: float = 5.0) -> None:
        """Claim nothing more, ask every run to stop and queue its job again; waits up to
        ``grace_s`` for the scheduler, then for each run to return at its next report."""
        self._stopping.set()
        self._store.touch()
        if self._scheduler.is_alive():
            self._scheduler.join(grace_s)
        # Only now is every claimed job in ``_running``; a run that has not begun yet stops at
        # its first report.
        with self._lock:
            contexts = list(self._running.values())
        for context in contexts:
            context.stop(SHUTDOWN)
        self._pool.shutdown(wait=True)

    def _schedule(self) -> None:
        seen = -1
        while not self._stopping.is_set():
            seen = self._store.generation
            try:
                self._claim_free_slots()
            except Exception:
                log.exception("the job scheduler failed to claim jobs")
            self._store.wait_for_change(seen, _IDLE_WAKE_S)

    def _claim_free_slots(self) -> None:
        for name in self._store.queued_kinds():
            while not self._stopping.is_set():
                with self._lock:
                    busy = len(self._running)
                    of_kind = sum(c.job.kind == name for c in self._running.values())
                if busy >= self._workers or of_kind >= self._limits.get(name, self._workers):
                    break
                job = self._store.claim(name)
                if job is None:
                    break
                context = JobContext(job, self._input_paths(job), self._store)
                with self._lock:
                    self._running[job.id] = context
                self._pool.submit(self._run, context)

    def _input_paths(self, job: Job) -> dict[str, Path]:
        return {
            item.name: self._uploads.input_path(job.id, item.name)
            if item.uploaded
            else Path(item.path)
            for item in job.inputs
        }

    def _run(self, context: JobContext) -> None:
        job = context.job
        try:
            result = self._execute(context)
            if not self._store.succeed(job.id, job.attempts, result):
                log.info("job %s ended after it was cancelled; its result is dropped", job.id)
        except JobStopped:
            if context.stop_reason == SHUTDOWN:
                self._store.requeue(job.id, job.attempts)
            log.info("job %s (%s) stopped: %s", job.id, job.kind, context.stop_reason or "over")
        except OrstreamError as error:
            self._store.fail(job.id, job.attempts, str(error))
        except Exception as error:
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._store.fail(
                job.id, job.attempts, f"internal error: {type(error).__name__}: {error}"
            )
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            if self._store.get(job.id).final:
                self._uploads.discard(job.id)
            self._store.touch()

    @abstractmethod
    def _execute(self, context: JobContext) -> Mapping[str, Any]:
        """Run one job to its result, reporting through ``context``.

        Raises:
            JobStopped: the run was asked to stop (``context.stop_reason`` says why).
            OrstreamError: the job cannot be done; it fails with this message.
        """
