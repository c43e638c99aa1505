"""What a job kind is, and the context a kind's run reports through.

A kind checks a submission before it is queued (so a bad one is refused at once, not failed
later) and runs one job in a worker. A run reports progress and partial results through its
:class:`JobContext`; each report is also where the run learns it must stop (the job was
cancelled, or the server is stopping): the report raises :class:`JobStopped`, which the kind
lets through. Stopping is therefore cooperative: a kind reports often enough to stop promptly.

Reports go to a :class:`JobReports`: the store itself when the kind runs in the server process,
a stream back to the server when it runs on a Ray Serve replica.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from orstream.jobs import Job, JobSubmission

PROGRESS_INTERVAL_S = 0.2
"""The most often a run's progress is written to the store (the last report always is)."""


class JobStopped(Exception):
    """Raised by a report when the run must end now: its job was cancelled, or the server is
    stopping (the job is then queued again)."""


class JobReports(Protocol):
    """Where a run's reports go; each answers False once the job no longer runs in that
    attempt (cancelled, or run again after a restart), so the run stops."""

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        """Record how far the job's attempt is."""
        ...

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        """Record one partial result of the job's attempt."""
        ...


class JobContext:
    """One attempt of one job, as its kind's run sees it.

    Args:
        job: the job, as claimed (its ``attempts`` is this attempt's number).
        inputs: the server-side file of each input, by name.
        reports: where reports go.
    """

    def __init__(self, job: Job, inputs: Mapping[str, Path], reports: JobReports) -> None:
        self.job = job
        self.inputs = dict(inputs)
        self._reports = reports
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._on_stop: list[Callable[[], None]] = []
        self.stop_reason = ""
        self._last_progress_s = 0.0

    @property
    def params(self) -> Mapping[str, str]:
        """The parameters the job was submitted with."""
        return self.job.params

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how far the run is (0..1) and what it does.

        Raises:
            JobStopped: the run must end now.
        """
        self._check()
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress_s < PROGRESS_INTERVAL_S:
            return
        self._last_progress_s = now
        if not self._reports.report_progress(self.job.id, self.job.attempts, fraction, message):
            raise JobStopped("the job no longer runs in this attempt")

    def partial(self, value: Mapping[str, Any]) -> None:
        """Record a partial result (a JSON object) for watchers.

        Raises:
            JobStopped: the run must end now.
        """
        self._check()
        if not self._reports.add_partial(self.job.id, self.job.attempts, value):
            raise JobStopped("the job no longer runs in this attempt")

    def stop(self, reason: str) -> None:
        """Ask the run to end at its next report (called from another thread)."""
        with self._lock:
            if self._stop.is_set():
                return
            self.stop_reason = reason
            self._stop.set()
            callbacks = list(self._on_stop)
        for callback in callbacks:
            callback()

    def when_stopped(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the run is asked to stop (at once if it already was): how an
        engine that waits on remote work passes a stop on."""
        with self._lock:
            stopped = self._stop.is_set()
            if not stopped:
                self._on_stop.append(callback)
        if stopped:
            callback()

    def _check(self) -> None:
        if self._stop.is_set():
            raise JobStopped(self.stop_reason)


class JobKind(Protocol):
    """A kind of job the server runs."""

    name: str
    """The name clients submit it by."""
    description: str
    """One line for ``orstream server run --help``."""

    def check(self, submission: JobSubmission) -> None:
        """Refuse a submission this kind cannot run (inputs, parameters).

        Raises:
            OrstreamError: what is wrong, as one line for the client.
        """

    def run(self, context: JobContext) -> Mapping[str, Any]:
        """Run one job and return its result, a JSON object.

        Raises:
            OrstreamError: the job cannot be done (e.g. its input is not what the kind reads);
                the job fails with this message and is not retried.
            JobStopped: raised by a report; let it through.
        """
        ...
