"""What the hand-off tests share: judged frames whose colour says what they are, a clip's
frames read back, an outbox desk filled with frames, a job kind held until released, and a
real job server on a loopback port chosen before it starts (so an edge can try it while it is
still down)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np

from orstream.client.server_client import ServerClient
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.outbox.followers import ItemFollowers
from orstream.edge.outbox.job_calls import JobServerCalls
from orstream.edge.outbox.retry import RetryPolicy
from orstream.edge.outbox.sender import OutboxSender
from orstream.edge.outbox.store import OutboxStore
from orstream.handoffs import HandOffItem
from orstream.jobs import JobSubmission, PartialResult
from orstream.server.job_server import JobServer, ServerSettings
from orstream.server.kinds.job_kind import JobContext, JobKind
from orstream.server.kinds.probe import ProbeKind
from orstream.server.kinds.registry import KindRegistry
from orstream.streams.frame import Frame

MS = 1_000_000
GREEN = (0, 200, 0)
"""In patient: may leave."""
RED = (220, 0, 0)
"""Out of patient: never leaves."""
BLUE = (0, 0, 220)
"""Before the recognizer's first result: never leaves."""
FAST_RETRY = RetryPolicy(initial_s=0.05, factor=2.0, max_s=0.2, jitter=0.3)


def coloured(index: int, colour: tuple[int, int, int], step_ms: int = 100) -> Frame:
    """Frame ``index`` (``step_ms`` apart) of stream ``or1``, all one colour."""
    image = np.empty((48, 64, 3), np.uint8)
    image[:] = colour
    return Frame(image, index * step_ms * MS, time.monotonic_ns(), index, "or1")


def clip_colours(path: Path) -> list[str]:
    """Each frame of an MP4 named by its nearest colour (``green``, ``red`` or ``blue``)."""
    names = {"green": GREEN, "red": RED, "blue": BLUE}
    found = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
            found.append(min(names, key=lambda name: np.abs(mean - names[name]).sum()))
    return found


def desk_with_frames(
    folder: Path,
    seconds: float = 2.0,
    on_change: Callable[[HandOffItem], None] | None = None,
    **limits: Any,
) -> HandOffDesk:
    """A desk on an outbox in ``folder`` whose stream ``or1`` holds ``seconds`` of green
    frames, all judged in patient (no sender: set ``desk.sender``)."""
    store = OutboxStore(folder, **limits)
    desk = HandOffDesk(store, None, ItemFollowers(on_change), max_s=30.0, fps=10.0)
    buffer = desk.add_stream("or1")
    for index in range(round(seconds * 10)):
        buffer.add(coloured(index, GREEN), private=False)
    return desk


def sender_for(
    store: OutboxStore,
    address: str,
    on_change: Callable[[HandOffItem], None] | None = None,
    on_partial: Callable[[str, PartialResult], None] | None = None,
) -> OutboxSender:
    """A sender of ``store`` to ``address`` with short waits between tries."""
    return OutboxSender(
        store,
        lambda: JobServerCalls(address, 0.5),
        FAST_RETRY,
        on_change,
        on_partial=on_partial,
    )


class HoldKind:
    """Job kind ``hold``: reports progress until the test releases it, then succeeds."""

    name = "hold"
    description = "run until the test releases it"

    def __init__(self) -> None:
        self.released = threading.Event()
        self.started = threading.Event()

    def check(self, submission: JobSubmission) -> None:
        return None

    def run(self, context: JobContext) -> Mapping[str, Any]:
        self.started.set()
        while not self.released.wait(0.01):
            context.progress(0.5, "held")
        return {"held": True}


class ServerOnPort:
    """A job server (``probe``, ``hold`` and ``more`` kinds) on a loopback port fixed before
    it starts."""

    def __init__(self, store: Path, port: int, *more: JobKind) -> None:
        self.store = store
        self.address = f"127.0.0.1:{port}"
        self.hold = HoldKind()
        self.more = more
        self.server: JobServer | None = None

    def start(self) -> None:
        kinds = KindRegistry([ProbeKind(), self.hold, *self.more])
        self.server = JobServer(ServerSettings(self.store, self.address), kinds)
        self.server.start()

    def stop(self, release: bool = True) -> None:
        """Stop the server (its running jobs are queued again); ``release`` the held jobs
        first, or leave them held for the next server on this store."""
        if release:
            self.hold.released.set()
        if self.server is not None:
            self.server.stop(grace_s=0.5)
            self.server = None

    def jobs(self) -> int:
        with ServerClient(self.address) as client:
            return len(client.list())


def wait_for(check: Callable[[], bool], timeout_s: float = 20.0, what: str = "it") -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(0.02)
