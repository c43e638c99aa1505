"""What a Ray Serve replica of one job kind runs: the kind itself, its reports streamed back.

The replica never touches the job store: the server process stays its only writer. A request
carries the job (as the server claimed it, its attempt included) and its inputs as Ray objects;
the replica writes the inputs to a temporary folder, runs the kind in a thread with a
:class:`JobContext` whose reports become stream items, and ends the stream with the outcome.
The server cancelling the request (the job was cancelled, or the server is stopping) stops the
kind at its next report, as in the server process.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError
from orstream.jobs import Job
from orstream.server.kinds.job_kind import JobContext, JobKind, JobStopped

Event = tuple[str, Any]
"""A stream item: ``("progress", (fraction, message))``, ``("partial", value)``, and last one of
``("result", value)``, ``("failed", message)`` (the kind refused the job), ``("error",
message)`` (a bug in the kind) or ``("stopped", reason)``."""
FINAL = ("result", "failed", "error", "stopped")
Post = Callable[[Event], None]


class KindReplica:
    """The Serve deployment class of one job kind.

    Args:
        kind: the kind it runs (pickled to each replica).
    """

    def __init__(self, kind: JobKind) -> None:
        self._kind = kind

    async def run(self, job: Job, inputs: Mapping[str, Any]) -> AsyncIterator[Event]:
        """Run ``job`` on ``inputs`` (a Ray object of each input's bytes, by name), streaming
        its reports and last its outcome."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def post(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        context = JobContext(job, {}, _StreamedReports(post))
        worker = threading.Thread(
            target=self._work, args=(context, inputs, post), name=f"job-{job.id}", daemon=True
        )
        worker.start()
        try:
            while True:
                event = await events.get()
                yield event
                if event[0] in FINAL:
                    return
        finally:
            # Reached early only when the server cancelled the request.
            context.stop("cancelled by the server")

    def _work(self, context: JobContext, inputs: Mapping[str, Any], post: Post) -> None:
        import ray

        try:
            with tempfile.TemporaryDirectory(prefix="orstream-job-") as folder:
                for name, ref in inputs.items():
                    path = Path(folder) / name
                    path.write_bytes(ray.get(ref))
                    context.inputs[name] = path
                result = self._kind.run(context)
            post(("result", dict(result)))
        except JobStopped:
            post(("stopped", context.stop_reason))
        except OrstreamError as error:
            post(("failed", str(error)))
        except Exception as error:
            post(("error", f"{type(error).__name__}: {error}"))


class _StreamedReports:
    """Reports as stream items; whether the job still runs is the server's to say (it cancels
    the request), so each report is accepted."""

    def __init__(self, post: Post) -> None:
        self._post = post

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        self._post(("progress", (progress, message)))
        return True

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        self._post(("partial", dict(value)))
        return True
