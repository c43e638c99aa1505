"""A recording that survives what an operating room throws at it: segments, rotation, free space.

:class:`Recording` writes a stream's video as a series of MP4 segments
(:class:`~orstream.streams.sinks.mp4_recorder.Mp4Recorder`: fragmented, so even a segment cut
short by a crash or a full disk plays up to its last second). The first segment is the path
given (``or3.mp4``); each next one adds a number (``or3-002.mp4``, ``or3-003.mp4``, ...). A new
segment starts:

- when the frame size changes mid-stream (a camera switched to another resolution): the new
  segment has the new size; nothing is scaled;
- when the segment has lasted ``segment_s`` (by the frames' timestamps) or grown past
  ``segment_mb``; with ``max_files``, the oldest segments are deleted so that at most that many
  remain.

Before each segment and about once a second, the free space of the folder is checked: below
``min_free_mb`` the segment is finished cleanly and the recording stops with an error that
says why (the caller reports it: the edge logs it, marks the sink failed in its status, metrics
and audit log, and the video goes on without it). A write that fails (the disk filled anyway,
the folder vanished) finishes the segment as far as it can and stops the same way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.sinks.sink import Sink

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""How often (in stream time) the free space and the segment's size are checked."""


@dataclass(frozen=True)
class Rotation:
    """When a recording starts a new segment, how many it keeps, and when it stops.

    Attributes:
        segment_s: start a new segment after this long (None: only on a size change).
        segment_mb: start a new segment once the current one is this large (None: no limit).
        max_files: keep at most this many segments, deleting the oldest (None: keep all).
        min_free_mb: stop recording when the folder's disk has less free space than this.
    """

    segment_s: float | None = None
    segment_mb: float | None = None
    max_files: int | None = None
    min_free_mb: float = 500.0

    def __post_init__(self) -> None:
        for name in ("segment_s", "segment_mb"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise OrstreamError(f"recording {name} must be positive, not {value}")
        if self.max_files is not None and self.max_files < 1:
            raise OrstreamError(f"recording max_files must be at least 1, not {self.max_files}")
        if self.min_free_mb < 0:
            raise OrstreamError(f"recording min_free_mb must be >= 0, not {self.min_free_mb}")


def free_mb(folder: Path) -> float:
    """Free space of the disk holding ``folder``, in MB."""
    return shutil.disk_usage(folder).free / 2**20


class Recording:
    """A stream's video as MP4 segments (see the module docstring); takes frames of any size.

    Args:
        path: the first segment (its folder must exist).
        fps: the stream's nominal frame rate.
        rotation: segments, how many to keep, and the free space to keep.
        free: the free space of a folder in MB (the disk's; tests pass their own).

    Attributes:
        segments: every segment written, oldest first (deleted ones left out).
    """

    def __init__(
        self,
        path: Path | str,
        fps: float,
        rotation: Rotation = Rotation(),
        free: Callable[[Path], float] = free_mb,
    ) -> None:
        self.path = Path(path)
        self.name = f"record:{self.path}"
        self.fps = fps
        self.rotation = rotation
        self.free = free
        self.segments: list[Path] = []
        self.written = 0
        self._numbered = 0
        self._current: Sink | None = None
        self._size: tuple[int, int] | None = None
        self._started_pts = 0
        self._checked_pts = 0
        self._stopped = False

    def write(self, frame: Frame) -> None:
        """Record one frame, starting a new segment when one is due.

        Raises:
            OrstreamError: the recording stopped (free space, a failed write); it is finished
                and takes no more frames.
        """
        if self._stopped:
            raise OrstreamError(f"{self.name}: the recording has stopped")
        height, width = frame.image.shape[:2]
        if self._current is None or (width, height) != self._size or self._due(frame):
            self._next_segment(width, height, frame)
        elif frame.pts_ns - self._checked_pts >= CHECK_EVERY_S * 1e9:
            self._checked_pts = frame.pts_ns
            self._check_free()
        assert self._current is not None
        try:
            self._current.write(frame)
        except OrstreamError:
            self._stop()
            raise
        self.written += 1

    def close(self) -> None:
        """Finish the current segment (playable after this returns)."""
        self._stopped = True
        current, self._current = self._current, None
        if current is not None:
            current.close()

    def _due(self, frame: Frame) -> bool:
        """The current segment is long or large enough to start the next."""
        rotation = self.rotation
        segment_ns = None if rotation.segment_s is None else rotation.segment_s * 1e9
        if segment_ns is not None and frame.pts_ns - self._started_pts >= segment_ns:
            return True
        if rotation.segment_mb is not None and frame.pts_ns - self._checked_pts >= 1e9:
            segment = self.segments[-1]
            return segment.exists() and segment.stat().st_size >= rotation.segment_mb * 2**20
        return False

    def _next_segment(self, width: int, height: int, frame: Frame) -> None:
        if self._current is not None:
            previous, self._current = self._current, None
            previous.close()
        self._check_free()
        self._numbered += 1
        path = self.path if self._numbered == 1 else self._numbered_path(self._numbered)
        # GStreamer only now: configs name a Rotation on hosts without it (the GPU bench).
        from orstream.streams.sinks.mp4_recorder import Mp4Recorder

        try:
            self._current = Mp4Recorder(path, width, height, self.fps)
        except OrstreamError:
            self._stopped = True
            raise
        if self.segments:
            log.info("%s: new segment %s (%dx%d)", self.name, path.name, width, height)
        self.segments.append(path)
        self._size = (width, height)
        self._started_pts = self._checked_pts = frame.pts_ns
        self._forget_oldest()

    def _numbered_path(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.stem}-{number:03d}{self.path.suffix}")

    def _forget_oldest(self) -> None:
        keep = self.rotation.max_files
        while keep is not None and len(self.segments) > keep:
            oldest = self.segments.pop(0)
            oldest.unlink(missing_ok=True)
            log.info("%s: deleted the oldest segment %s (max_files %d)", self.name, oldest, keep)

    def _check_free(self) -> None:
        free = self.free(self.path.parent)
        if free < self.rotation.min_free_mb:
            self._stop()
            raise OrstreamError(
                f"{self.name}: only {free:.0f} MB free on its disk (min_free_mb "
                f"{self.rotation.min_free_mb:g}): recording stopped"
            )

    def _stop(self) -> None:
        """Finish what was written, as far as the disk lets it; take no more frames."""
        self._stopped = True
        current, self._current = self._current, None
        if current is None:
            return
        try:
            current.close()
        except OrstreamError as error:
            log.error("%s: finishing %s: %s", self.name, self.segments[-1].name, error)
