"""What the job service tests share: sample videos, a kind that runs until told, a server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from orstream.jobs import JobSubmission
from orstream.server.kinds.job_kind import JobContext
from orstream.server.kinds.probe import ProbeKind
from orstream.server.kinds.registry import KindRegistry
from orstream.streams.sources.video_file import H264Writer


def write_video(
    path: Path, frames: int = 30, fps: float = 10.0, size: tuple[int, int] = (96, 64)
) -> Path:
    """An H.264 MP4: noise for its first half, then black (so black and frozen frames show)."""
    width, height = size
    rng = np.random.default_rng(7)
    with H264Writer(path, width, height, fps) as writer:
        for index in range(frames):
            if index < frames // 2:
                writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
            else:
                writer.write(np.zeros((height, width, 3), np.uint8))
    return path


class GateKind:
    """Job kind ``gate``: reports progress every few milliseconds until the test opens its
    gate, then succeeds with the number of reports; it lets the tests hold a job running."""

    name = "gate"
    description = "run until the test opens the gate"

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started = threading.Event()
        self.stopped: list[str] = []

    def check(self, submission: JobSubmission) -> None:
        return None

    def run(self, context: JobContext) -> Mapping[str, Any]:
        self.started.set()
        reports = 0
        try:
            while not self.opened.wait(0.005):
                context.progress(0.5, "waiting at the gate")
                reports += 1
        except BaseException as error:
            self.stopped.append(type(error).__name__)
            raise
        return {"reports": reports}


class UnserializableKind:
    """Job kind ``unserializable``: a bug, a result that is not JSON."""

    name = "unserializable"
    description = "return a result that JSON cannot hold"

    def check(self, submission: JobSubmission) -> None:
        return None

    def run(self, context: JobContext) -> Mapping[str, Any]:
        return {"value": object()}


class NapKind:
    """Job kind ``nap``: reports progress every 10 ms for ``seconds`` (a parameter, default 1),
    then succeeds with the id of the process it ran in; it holds no thread state, so it also
    runs on Ray replicas."""

    name = "nap"
    description = "report progress for a while"

    def check(self, submission: JobSubmission) -> None:
        return None

    def run(self, context: JobContext) -> Mapping[str, Any]:
        seconds = float(context.params.get("seconds", "1"))
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            context.progress(elapsed / seconds, "napping")
            time.sleep(0.01)
        context.progress(1.0, "awake")
        return {"slept_s": seconds, "pid": os.getpid()}


def sample_kinds(gate: GateKind) -> KindRegistry:
    """The shipped kinds, the gate and the unserializable kind."""
    return KindRegistry([ProbeKind(), gate, UnserializableKind()])
