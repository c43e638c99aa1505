"""The outbox on disk: one SQLite database (WAL) and a folder of inputs per item.

Layout under the outbox folder::

    outbox.sqlite3          one row per item: what to send, its key, where it stands
    items/<id>/clip.mp4     the item's inputs, until its job is over

An item's files are written (and synced) before its row is committed, so a row always has its
inputs; a folder without a row (the edge stopped between the two) is removed when the outbox
opens, and was never answered to anyone. Rows are written before anything is sent, and every
change the sender learns is committed before it acts on it, so an edge restart loses nothing.

The outbox is bounded: items not yet over, and the bytes of their inputs; a new item beyond
either is refused with :class:`OutboxFull`. Inputs of an item that is over are deleted at once;
its row stays for listing, the newest ``keep_finished`` of them.

One edge holds an outbox at a time (a lock on ``outbox.lock``): a second would clear the first
one's clips being written and send its items beside it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from orstream.edge.outbox.errors import NoSuchItem, OutboxFull
from orstream.errors import OrstreamError
from orstream.handoffs import FINAL_HANDOFF_STATES, HandOffItem
from orstream.jobs import Job

DATABASE = "outbox.sqlite3"
LOCK = "outbox.lock"
ITEMS = "items"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seconds REAL NOT NULL,
    params TEXT NOT NULL,
    origin TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    frames INTEGER NOT NULL,
    withheld_frames INTEGER NOT NULL,
    clip_bytes INTEGER NOT NULL,
    sends INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    job_id TEXT NOT NULL DEFAULT '',
    job_state TEXT NOT NULL DEFAULT '',
    job_attempts INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    progress_message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_s REAL NOT NULL,
    accepted_s REAL NOT NULL DEFAULT 0,
    finished_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_state ON items (state);
"""

_FINAL = tuple(sorted(FINAL_HANDOFF_STATES))
_OPEN = f"state NOT IN ({', '.join('?' * len(_FINAL))})"


class OutboxStore:
    """The outbox of one edge (see the module).

    Args:
        folder: where it lives (made when missing).
        max_items: items not yet over that it holds at most.
        max_bytes: bytes of those items' inputs that it holds at most.
        keep_finished: rows of items that are over kept for listing (the oldest go).

    Every idempotency key holds the outbox's own id (made once, kept in the folder), so two
    edges sending to one server never share a key.

    Raises:
        OrstreamError: the folder or its database cannot be opened.
    """

    def __init__(
        self,
        folder: Path,
        max_items: int = 100,
        max_bytes: int = 1024**3,
        keep_finished: int = 1000,
    ) -> None:
        self.folder = folder
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.keep_finished = keep_finished
        try:
            (folder / ITEMS).mkdir(parents=True, exist_ok=True)
            self._lock_file = _locked(folder / LOCK)
            self._db = sqlite3.connect(
                folder / DATABASE, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise OrstreamError(f"{folder}: cannot open the outbox ({error})") from None
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self.edge_id = _edge_id(folder)
        self._recover()

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lock_file.close()

    # -- adding -------------------------------------------------------------------------------

    def new_folder(self) -> tuple[str, Path]:
        """A fresh item id and the empty folder its inputs are written to before :meth:`add`."""
        item_id = uuid.uuid4().hex[:16]
        folder = self.folder / ITEMS / item_id
        folder.mkdir()
        return item_id, folder

    def check_room(self, extra_bytes: int = 0) -> None:
        """Refuse at once when one more item (of ``extra_bytes``) would not fit.

        Raises:
            OutboxFull: naming the limit reached.
        """
        with self._lock:
            self._check_room(extra_bytes)

    def add(
        self,
        item_id: str,
        *,
        stream_id: str,
        kind: str,
        seconds: float,
        params: Mapping[str, str],
        origin: str,
        frames: int,
        withheld_frames: int,
    ) -> HandOffItem:
        """Commit an item whose inputs are in its folder (from :meth:`new_folder`); it waits
        to be sent. On a refusal the folder is removed.

        Raises:
            OutboxFull: the item does not fit.
        """
        folder = self.folder / ITEMS / item_id
        clip_bytes = sum(_synced(path) for path in folder.iterdir())
        _synced(folder)
        with self._lock:
            try:
                self._check_room(clip_bytes)
            except OutboxFull:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._db.execute(
                "INSERT INTO items (id, stream_id, kind, seconds, params, origin, "
                "idempotency_key, state, frames, withheld_frames, clip_bytes, created_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
                (
                    item_id,
                    stream_id,
                    kind,
                    seconds,
                    json.dumps(dict(params)),
                    origin,
                    f"edge-{self.edge_id}-{item_id}",
                    frames,
                    withheld_frames,
                    clip_bytes,
                    time.time(),
                ),
            )
            return self._get(item_id)

    def _check_room(self, extra_bytes: int) -> None:
        items, used = self._usage()
        if items >= self.max_items:
            raise OutboxFull(
                f"the outbox is full: {items} of {self.max_items} items wait to be sent or "
                "finished; try again once the server has taken some"
            )
        if used + extra_bytes > self.max_bytes:
            raise OutboxFull(
                f"the outbox is full: {used / 1e6:.1f} MB of clips wait and this one needs "
                f"{extra_bytes / 1e6:.1f} MB more than its {self.max_bytes / 1e6:.1f} MB hold"
            )

    def usage(self) -> tuple[int, int]:
        """Items not yet over, and the bytes of their inputs."""
        with self._lock:
            return self._usage()

    def _usage(self) -> tuple[int, int]:
        row = self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(clip_bytes), 0) FROM items WHERE {_OPEN}", _FINAL
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- reading ------------------------------------------------------------------------------

    def get(self, item_id: str) -> HandOffItem:
        """The item now.

        Raises:
            NoSuchItem: no item has that id.
        """
        with self._lock:
            return self._get(item_id)

    def recent(self, state: str = "", limit: int = 100) -> list[HandOffItem]:
        """The most recent items first, of one state or ("") all."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM items {where} ORDER BY rowid DESC LIMIT ?", (*args, limit)
            ).fetchall()
        return [_item(row) for row in rows]

    def unfinished(self) -> list[HandOffItem]:
        """Items not yet over, oldest first: what the sender works on."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM items WHERE {_OPEN} ORDER BY rowid", _FINAL
            ).fetchall()
        return [_item(row) for row in rows]

    def inputs(self, item_id: str) -> list[Path]:
        """The item's input files, by name."""
        folder = self.folder / ITEMS / item_id
        return sorted(folder.iterdir()) if folder.is_dir() else []

    # -- what the sender learns ---------------------------------------------------------------

    def failed_try(self, item_id: str, error: str) -> HandOffItem:
        """A send or a watch failed and will be tried again."""
        return self._update(item_id, "sends = sends + 1, last_error = ?", error)

    def accepted(self, item_id: str, job_id: str) -> HandOffItem:
        """The server holds the item as job ``job_id``."""
        return self._update(
            item_id,
            "state = 'accepted', job_id = ?, sends = sends + 1, last_error = '', accepted_s = ?",
            job_id,
            time.time(),
        )

    def job_seen(self, item_id: str, job: Job) -> HandOffItem:
        """Record the job as a watch shows it; a final job ends the item (its inputs go)."""
        if not job.final:
            return self._update(
                item_id,
                "job_state = ?, job_attempts = ?, progress = ?, progress_message = ?, "
                "last_error = ''",
                job.state,
                job.attempts,
                job.progress,
                job.progress_message,
            )
        return self._finish(
            item_id,
            job.state,
            "job_state = ?, job_attempts = ?, progress = ?, progress_message = ?, result = ?, "
            "error = ?",
            job.state,
            job.attempts,
            job.progress,
            job.progress_message,
            None if job.result is None else json.dumps(dict(job.result)),
            job.error,
        )

    def rejected(self, item_id: str, error: str) -> HandOffItem:
        """The server refused the item for good (or its inputs are gone): it is never resent."""
        return self._finish(item_id, "rejected", "error = ?, sends = sends + 1", error)

    def forgotten(self, item_id: str, why: str) -> HandOffItem:
        """The server no longer knows the item's job (its store was replaced): send it again
        with its key, which that server has not seen."""
        return self._update(item_id, "state = 'waiting', job_id = '', last_error = ?", why)

    def _finish(self, item_id: str, state: str, assignments: str, *args: Any) -> HandOffItem:
        item = self._update(
            item_id, f"state = ?, finished_s = ?, {assignments}", state, time.time(), *args
        )
        shutil.rmtree(self.folder / ITEMS / item_id, ignore_errors=True)
        with self._lock:
            self._db.execute(
                f"DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE NOT {_OPEN} "
                "ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                (*_FINAL, self.keep_finished),
            )
        return item

    def _update(self, item_id: str, assignments: str, *args: Any) -> HandOffItem:
        with self._lock:
            self._db.execute(f"UPDATE items SET {assignments} WHERE id = ?", (*args, item_id))
            return self._get(item_id)

    def _get(self, item_id: str) -> HandOffItem:
        row = self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise NoSuchItem(f"the outbox holds no item {item_id[:40]!r}")
        return _item(row)

    def _recover(self) -> None:
        """Remove folders without a row; end items whose inputs are gone."""
        with self._lock:
            ids = {row[0] for row in self._db.execute("SELECT id FROM items")}
        for folder in (self.folder / ITEMS).iterdir():
            if folder.name not in ids:
                shutil.rmtree(folder, ignore_errors=True)
        for item in self.unfinished():
            if not self.inputs(item.id) and item.state == "waiting":
                self.rejected(item.id, "its clip is missing from the outbox folder")


def _locked(path: Path) -> IO[bytes]:
    """``path`` opened and locked for this process (released when closed or on exit).

    Raises:
        OrstreamError: another process holds it.
    """
    file = path.open("ab")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise OrstreamError(
            f"{path.parent}: the outbox is in use by another running edge; give each edge its "
            "own (--outbox DIR)"
        ) from None
    return file


def _synced(path: Path) -> int:
    """Flush a file's (or a folder's entries') bytes to the disk; returns its size."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path.stat().st_size if path.is_file() else 0


def _edge_id(folder: Path) -> str:
    """This outbox's id, made once: what keeps its keys apart from another edge's."""
    path = folder / "edge-id"
    if not path.is_file():
        scratch = folder / "edge-id.partial"
        scratch.write_text(uuid.uuid4().hex[:12])
        scratch.replace(path)
    return path.read_text().strip()


def _item(row: sqlite3.Row) -> HandOffItem:
    return HandOffItem(
        id=row["id"],
        stream_id=row["stream_id"],
        kind=row["kind"],
        seconds=row["seconds"],
        params=json.loads(row["params"]),
        origin=row["origin"],
        idempotency_key=row["idempotency_key"],
        state=row["state"],
        frames=row["frames"],
        withheld_frames=row["withheld_frames"],
        clip_bytes=row["clip_bytes"],
        sends=row["sends"],
        last_error=row["last_error"],
        job_id=row["job_id"],
        job_state=row["job_state"],
        job_attempts=row["job_attempts"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        created_s=row["created_s"],
        accepted_s=row["accepted_s"],
        finished_s=row["finished_s"],
    )
