"""Jobs of the server tier: what a client submits, and a job as the server keeps it.

These types live in the core because the server, its gRPC conversions and every client share
them; a job's result and partial results are JSON objects, whose meaning each job kind defines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orstream.errors import OrstreamError, quoted

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
"""States a job never leaves."""

INPUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""An input's name: it becomes a file name in the server's store."""
KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_KEY_CHARS = 200
MAX_PARAM_CHARS = 1000
MAX_INPUTS = 16


@dataclass(frozen=True)
class InputSpec:
    """One input of a submission: ``upload_bytes`` bytes the client sends, or a ``path`` on the
    server's machine that the server reads itself."""

    name: str
    upload_bytes: int | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if not INPUT_NAME.fullmatch(self.name):
            raise OrstreamError(
                f"input name {quoted(self.name)}: use letters, digits, '.', '_' and '-' "
                "(at most 128, not starting with a dot)"
            )
        if (self.upload_bytes is None) == (self.path is None):
            raise OrstreamError(f"input {self.name!r}: needs an upload size or a path, not both")
        if self.upload_bytes is not None and self.upload_bytes < 0:
            raise OrstreamError(f"input {self.name!r}: negative size {self.upload_bytes}")
        if self.path is not None and not self.path:
            raise OrstreamError(f"input {self.name!r}: empty path")


@dataclass(frozen=True)
class JobSubmission:
    """What a client asks the server to do. The ``idempotency_key`` names the job: submitting
    the same key again answers the job it made the first time."""

    kind: str
    idempotency_key: str
    inputs: tuple[InputSpec, ...]
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not KIND_NAME.fullmatch(self.kind):
            raise OrstreamError(f"job kind {quoted(self.kind)}: not a kind name")
        if not self.idempotency_key or len(self.idempotency_key) > MAX_KEY_CHARS:
            raise OrstreamError(f"idempotency key: needs 1 to {MAX_KEY_CHARS} characters")
        if len(self.inputs) > MAX_INPUTS:
            raise OrstreamError(f"{len(self.inputs)} inputs: at most {MAX_INPUTS}")
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise OrstreamError("input names must differ")
        for name, value in self.params.items():
            if not PARAM_NAME.fullmatch(name):
                raise OrstreamError(f"parameter {quoted(name)}: not a parameter name")
            if len(value) > MAX_PARAM_CHARS:
                raise OrstreamError(f"parameter {name}: longer than {MAX_PARAM_CHARS} characters")

    @property
    def upload_bytes(self) -> int:
        """The bytes the client uploads, all inputs together."""
        return sum(spec.upload_bytes or 0 for spec in self.inputs)


@dataclass(frozen=True)
class JobInput:
    """An input as the server keeps it: ``path`` is the server-side path a client named, empty
    for an upload (whose bytes the server keeps in its store)."""

    name: str
    size_bytes: int
    uploaded: bool
    path: str = ""

    def __post_init__(self) -> None:
        if not INPUT_NAME.fullmatch(self.name):
            raise OrstreamError(f"input name {quoted(self.name)}: not an input name")
        if self.size_bytes < 0:
            raise OrstreamError(f"input {self.name!r}: negative size")
        if self.uploaded == bool(self.path):
            raise OrstreamError(f"input {self.name!r}: an upload has no path, a path input has one")


@dataclass(frozen=True)
class Job:
    """A job and where it stands. Times are seconds since the Unix epoch, 0 until they happen;
    ``attempts`` counts the times a worker started it (a rerun after a restart counts);
    ``progress`` (0..1) belongs to the current attempt."""

    id: str
    kind: str
    idempotency_key: str
    inputs: tuple[JobInput, ...]
    params: Mapping[str, str]
    state: str
    attempts: int = 0
    progress: float = 0.0
    progress_message: str = ""
    result: Mapping[str, Any] | None = None
    error: str = ""
    created_s: float = 0.0
    started_s: float = 0.0
    finished_s: float = 0.0

    def __post_init__(self) -> None:
        if self.state not in JOB_STATES:
            raise OrstreamError(f"job state {quoted(self.state)}: not one of {JOB_STATES}")
        if self.attempts < 0:
            raise OrstreamError(f"job {self.id}: negative attempts")
        if not 0.0 <= self.progress <= 1.0:
            raise OrstreamError(f"job {self.id}: progress {self.progress} outside 0..1")
        if (self.result is not None) != (self.state == "succeeded"):
            raise OrstreamError(f"job {self.id}: a result belongs to a succeeded job only")

    @property
    def final(self) -> bool:
        """Whether the job is over (succeeded, failed or cancelled)."""
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class PartialResult:
    """A piece of a job's result produced before its end: the ``sequence``-th of its
    ``attempt`` (a rerun starts again at 0)."""

    attempt: int
    sequence: int
    value: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.attempt < 1 or self.sequence < 0:
            raise OrstreamError(f"partial result {self.attempt}/{self.sequence}: bad numbering")
