"""The job service: submitting, watching, reading, cancelling and listing jobs.

What ``orstream.v1.ServerService`` does, without gRPC: the servicer only translates messages
and errors. A submission is refused as early as possible, before any upload is read: an
unknown kind, a kind's own checks, a full queue, too large an upload. A known idempotency key
answers its job at once, whatever the rest of the request holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator

from orstream.jobs import Job, JobSubmission, PartialResult
from orstream.server.job_errors import QueueFull
from orstream.server.job_scheduler import JobScheduler
from orstream.server.kinds.registry import KindRegistry
from orstream.server.store import JobStore
from orstream.server.uploads import UploadArea

WATCH_POLL_S = 0.5
"""How often a watch with nothing new checks that its client is still there."""
DEFAULT_LIST_LIMIT = 100


class JobService:
    """Jobs in a store, run by an executor.

    Args:
        store: the job store.
        kinds: the kinds the server runs.
        uploads: where inputs are received and kept.
        executor: runs queued jobs.
        max_queued: the most jobs that may wait; more are refused at once.
    """

    def __init__(
        self,
        store: JobStore,
        kinds: KindRegistry,
        uploads: UploadArea,
        executor: JobScheduler,
        max_queued: int,
    ) -> None:
        self._store = store
        self._kinds = kinds
        self._uploads = uploads
        self._executor = executor
        self._max_queued = max_queued

    def submit(
        self, submission: JobSubmission, chunks: Iterable[tuple[int, bytes]]
    ) -> tuple[Job, bool]:
        """Queue a job, reading its uploaded inputs from ``chunks`` (input index, bytes), or
        answer the job its key already names (``chunks`` is not read then).

        Returns:
            The job, and whether this call made it.

        Raises:
            OrstreamError: a refusal (:mod:`orstream.server.job_errors` says which status).
        """
        self._kinds.get(submission.kind)
        existing = self._store.by_key(submission.idempotency_key, submission)
        if existing is not None:
            return existing, False
        self._kinds.get(submission.kind).check(submission)
        queued = self._store.queued_count()
        if queued >= self._max_queued:
            raise QueueFull(f"the queue is full ({queued} jobs wait); submit again later")
        self._uploads.check(submission)
        upload = self._uploads.receive(submission, chunks)
        job_id = uuid.uuid4().hex
        self._uploads.keep(upload, job_id)
        try:
            job, created = self._store.add(job_id, submission, upload.inputs, self._max_queued)
        except BaseException:
            self._uploads.discard(job_id)
            raise
        if not created:
            self._uploads.discard(job_id)
        return job, created

    def get(self, job_id: str) -> Job:
        """The job now.

        Raises:
            UnknownJob: no job has this id.
        """
        return self._store.get(job_id)

    def recent(self, state: str = "", limit: int = 0) -> list[Job]:
        """The most recent jobs first (``limit`` 0: :data:`DEFAULT_LIST_LIMIT`)."""
        return self._store.recent(state, limit or DEFAULT_LIST_LIMIT)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job; a running one stops at its next report.

        Raises:
            UnknownJob: no job has this id.
            JobOver: it already succeeded or failed.
        """
        job, before = self._store.cancel(job_id)
        if before == "running":
            self._executor.cancel(job_id)
        elif before == "queued":
            self._uploads.discard(job_id)
        return job

    def wake_watches(self) -> None:
        """Make every watch check ``keep_going`` now rather than at its next poll."""
        self._store.touch()

    def watch(self, job_id: str, keep_going: Callable[[], bool]) -> Iterator[Job | PartialResult]:
        """The job now, then each change and each partial result, and last the job in its final
        state; ends early once ``keep_going`` answers False.

        Raises:
            UnknownJob: no job has this id (before anything is yielded).
        """
        job = self._store.get(job_id)
        yield job
        sent = job
        after = (0, -1)
        while True:
            seen = self._store.generation
            job = self._store.get(job_id)
            for partial in self._store.partials(job_id, after):
                yield partial
                after = (partial.attempt, partial.sequence)
            if job.final:
                yield job
                return
            if job != sent:
                yield job
                sent = job
            self._store.wait_for_change(seen, WATCH_POLL_S)
            if not keep_going():
                return
