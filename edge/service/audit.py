"""The audit log: one JSON line per thing an operating room must be able to account for.

Each line holds ``time`` (UTC, ISO 8601), ``principal`` (a token's name, ``anonymous`` without
tokens, ``edge`` for the runtime itself) and ``action``, with details:

- ``config``: the configuration the run started with (paths, never a token).
- ``model_loaded``: a model, its version and the backend it runs on, and why that backend.
- ``recording_started``, ``recording_stopped``, ``recording_failed`` (with the error).
- ``auth_refused``: a call without a valid token, or with a role too low (method, code).
- ``prompt``: a ``Prompt`` call let through (method).

Lines are written and flushed one at a time under a lock, so a crash loses none already made.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError

RUNTIME = "edge"
"""The principal of what the runtime does itself."""


class AuditLog:
    """Appends JSON lines to ``path`` (made if missing).

    Raises:
        OrstreamError: the file cannot be opened for appending.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("a", encoding="utf-8")
        except OSError as error:
            raise OrstreamError(f"{path}: cannot write the audit log ({error.strerror})") from None
        self._lock = threading.Lock()

    def record(self, action: str, principal: str = RUNTIME, **details: Any) -> None:
        """One line: now, ``principal``, ``action`` and the details (JSON values)."""
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "principal": principal,
            "action": action,
            **details,
        }
        text = json.dumps(line, default=str, ensure_ascii=False)
        with self._lock:
            if not self._file.closed:
                self._file.write(text + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
