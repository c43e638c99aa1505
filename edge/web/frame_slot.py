"""The newest overlay frame of each stream, handed from the video path to the browsers.

The web sink of a stream writes into a :class:`FrameSlot`: one frame, replaced by the next, so
writing never waits and a browser that reads slowly only skips frames (latest-frame-wins, as
the live ports do). Readers wait on the asyncio loop of the web server without polling: a
write wakes them through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading

from orstream.streams.frame import Frame


class FrameSlot:
    """The newest frame of one stream and its version (how many frames were written)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._version = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def version(self) -> int:
        return self._version

    def put(self, frame: Frame) -> None:
        """Replace the frame and wake every waiting reader; never waits on them."""
        with self._lock:
            self._frame = frame
            self._version += 1
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def newer_than(self, version: int) -> tuple[int, Frame]:
        """The first frame whose version is above ``version`` (waits for one)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._version > version and self._frame is not None:
                    return self._version, self._frame
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            await future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WebSink:
    """The :class:`~orstream.streams.sinks.sink.Sink` of one stream's dashboard video: writes
    go to the stream's slot. Closing keeps the last frame, so a stream that ended still shows
    its last picture (under the page's NO SIGNAL)."""

    def __init__(self, stream_id: str, slot: FrameSlot) -> None:
        self.name = f"web:{stream_id}"
        self._slot = slot

    def write(self, frame: Frame) -> None:
        self._slot.put(frame)

    def close(self) -> None:
        """Nothing to flush: the slot is read by whoever still watches."""


class WebFrames:
    """The slot of every stream the dashboard shows, by stream id."""

    def __init__(self, stream_ids: tuple[str, ...]) -> None:
        self.slots = {stream_id: FrameSlot() for stream_id in stream_ids}

    def sink(self, stream_id: str) -> WebSink:
        return WebSink(stream_id, self.slots[stream_id])
