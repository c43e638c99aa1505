"""Where frames go: the :class:`Sink` protocol every sink implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from orstream.streams.frame import Frame


@runtime_checkable
class Sink(Protocol):
    """A consumer of frames (a recording, a network output, a display, a list in memory).

    Attributes:
        name: what the sink is, for logs and status (e.g. ``mp4:/data/case.mp4``).
    """

    name: str

    def write(self, frame: Frame) -> None:
        """Take one frame; cheap (a copy into the sink's queue), so the caller is not held up."""
        ...

    def close(self) -> None:
        """Flush and finish (an MP4 is complete and playable after this returns)."""
        ...
