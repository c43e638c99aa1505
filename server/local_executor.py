"""The ``local`` engine: the kinds run in worker threads of the server process, nothing else
to start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orstream.server.job_scheduler import JobScheduler
from orstream.server.kinds.job_kind import JobContext


class LocalExecutor(JobScheduler):
    """Runs each job's kind in the worker thread that claimed it."""

    def _execute(self, context: JobContext) -> Mapping[str, Any]:
        return self._kinds.get(context.job.kind).run(context)
