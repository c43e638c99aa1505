"""The clip embeddings of a stream's recent video, kept for text search.

The video-text model embeds the clip each of its frames ends; a :class:`ClipMemory` keeps those
embeddings (a few hundred bytes each, never the frames) for the last ``keep_s`` seconds of the
stream's own time, so a search reaches back over the recent surgery at the cost of one matrix
product. Written by the model's operator thread, searched from gRPC threads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from orstream.video_search import SearchMoment


@dataclass(frozen=True)
class KeptClip:
    """One clip: its last frame (``index``, ``pts_ns``), its first frame's ``start_pts_ns``
    and its unit-length embedding."""

    index: int
    pts_ns: int
    start_pts_ns: int
    embedding: np.ndarray


class ClipMemory:
    """The clips of one stream over its last ``keep_s`` seconds (its pts), oldest first."""

    def __init__(self, keep_s: float) -> None:
        self.keep_ns = int(keep_s * 1e9)
        self._clips: deque[KeptClip] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clips)

    def add(self, clip: KeptClip) -> None:
        """Keep a clip; clips older than ``keep_s`` before it go. A clip stamped before the
        newest (the stream was seeked back or restarted) starts the memory over."""
        with self._lock:
            if self._clips and clip.pts_ns < self._clips[-1].pts_ns:
                self._clips.clear()
            self._clips.append(clip)
            while self._clips[0].pts_ns < clip.pts_ns - self.keep_ns:
                self._clips.popleft()

    def search(
        self, query: np.ndarray, seconds: float, limit: int, apart_ns: int
    ) -> tuple[list[SearchMoment], int]:
        """The clips of the last ``seconds`` (0: all kept) most similar to ``query`` (a unit
        embedding), best first, no two ending within ``apart_ns`` of each other (a moment is
        named once, not by every overlapping clip), at most ``limit``; and how many clips were
        compared."""
        with self._lock:
            clips = list(self._clips)
        if seconds > 0 and clips:
            since = clips[-1].pts_ns - int(seconds * 1e9)
            clips = [clip for clip in clips if clip.pts_ns >= since]
        if not clips:
            return [], 0
        scores = np.stack([clip.embedding for clip in clips]) @ query
        ends = np.array([clip.pts_ns for clip in clips])
        moments: list[SearchMoment] = []
        for best in np.argsort(-scores, kind="stable"):
            if len(moments) == limit:
                break
            if any(abs(int(ends[best]) - moment.pts_ns) < apart_ns for moment in moments):
                continue
            clip = clips[best]
            score = float(np.clip(scores[best], -1.0, 1.0))
            moments.append(SearchMoment(clip.index, clip.pts_ns, clip.start_pts_ns, score))
        return moments, len(clips)
