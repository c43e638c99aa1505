"""The recent judged video of one stream, from which hand-off clips are cut.

Frames come from the stream's hand-off privacy gate, each judged private or not. A private
frame (out of patient, or not judged in patient) is kept as a mark only, never its picture, so
it cannot leave the edge whatever is asked later; the others are kept JPEG-compressed at
``fps`` frames per second at most, for the last ``keep_s`` seconds of the stream, so a minute
of 1080p costs tens of megabytes, not gigabytes. Times are the stream's own (``pts``): files
played flat out and live feeds are cut alike, and a discontinuity (a seek, a reconnect) starts
afresh, so a clip never spans two pieces of video.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from orstream.edge.outbox.errors import HandOffRefused
from orstream.streams.frame import Frame
from orstream.streams.sources.video_file import H264Writer

JPEG_QUALITY = 90


@dataclass(frozen=True)
class _Kept:
    """One sampled frame: its time, and its JPEG (None: it was private)."""

    pts_ns: int
    jpeg: bytes | None


@dataclass(frozen=True)
class ClipSummary:
    """What a written clip holds: its frames, and the frames of its window left out."""

    frames: int
    withheld_frames: int


class ClipBuffer:
    """The last ``keep_s`` seconds of one stream's judged frames (see the module).

    Args:
        stream_id: the stream.
        keep_s: stream seconds kept.
        fps: frames per second kept at most.
    """

    def __init__(self, stream_id: str, keep_s: float, fps: float) -> None:
        self.stream_id = stream_id
        self._keep_ns = int(keep_s * 1e9)
        self._interval_ns = int(1e9 / fps)
        self._fps = fps
        self._kept: deque[_Kept] = deque()
        self._lock = threading.Lock()

    def add(self, frame: Frame, private: bool) -> None:
        """Keep a judged frame if it is due (one per ``1 / fps`` of stream time)."""
        with self._lock:
            if frame.discontinuity or (self._kept and frame.pts_ns < self._kept[-1].pts_ns):
                self._kept.clear()
            if self._kept and frame.pts_ns - self._kept[-1].pts_ns < self._interval_ns:
                return
        jpeg = None if private else _jpeg(np.asarray(frame.image))
        with self._lock:
            self._kept.append(_Kept(frame.pts_ns, jpeg))
            while self._kept[0].pts_ns < frame.pts_ns - self._keep_ns:
                self._kept.popleft()

    @property
    def newest_pts_ns(self) -> int | None:
        """The stream time of the newest judged frame kept (None: none yet)."""
        with self._lock:
            return self._kept[-1].pts_ns if self._kept else None

    def cut(self, seconds: float) -> Clip:
        """The last ``seconds`` (ending at the newest judged frame), without its private frames.

        Raises:
            HandOffRefused: no frame was judged yet, or every frame of the window is private.
        """
        with self._lock:
            if not self._kept:
                raise HandOffRefused(
                    f"stream {self.stream_id} has no judged frame yet (the recognizer judges "
                    "frames before they may leave the edge)"
                )
            start = self._kept[-1].pts_ns - int(seconds * 1e9)
            window = [kept for kept in self._kept if kept.pts_ns > start]
        shown = [(kept.pts_ns, kept.jpeg) for kept in window if kept.jpeg is not None]
        if not shown:
            raise HandOffRefused(
                f"all {len(window)} frames of the last {seconds:g} s of stream {self.stream_id} "
                "are private (out of patient, or not judged in patient): nothing leaves the edge"
            )
        return Clip(shown, len(window) - len(shown), self._fps)


class Clip:
    """Frames cut from a :class:`ClipBuffer`, none of them private, and how many of the
    window were left out."""

    def __init__(self, shown: list[tuple[int, bytes]], withheld_frames: int, fps: float) -> None:
        self._times = [pts_ns for pts_ns, _ in shown]
        self._jpegs = [jpeg for _, jpeg in shown]
        self.summary = ClipSummary(len(shown), withheld_frames)
        self._fps = fps

    def write(self, path: Path) -> ClipSummary:
        """Write the frames as an H.264 MP4 (at the first frame's size, made even)."""
        first = _decoded(self._jpegs[0])
        size = (first.shape[1], first.shape[0])
        height, width = (first.shape[0] // 2) * 2, (first.shape[1] // 2) * 2  # H.264 wants even
        with H264Writer(path, width, height, self._rate()) as writer:
            for jpeg in self._jpegs:
                image = _decoded(jpeg)
                if image.shape[:2] != first.shape[:2]:  # the stream changed size mid-window
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                writer.write(np.ascontiguousarray(image[:height, :width]))
        return self.summary

    def _rate(self) -> float:
        """The clip's frame rate: the kept frames' own (a slower source than ``fps``), at
        most ``fps``."""
        gaps = np.diff(self._times)
        if not len(gaps):
            return self._fps
        return min(self._fps, 1e9 / float(np.median(gaps)))


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def _decoded(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("a kept JPEG does not decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
