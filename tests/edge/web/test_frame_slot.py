"""The newest frame of a stream, handed from the video path's thread to the web server's loop:
a write never waits, a reader waiting is woken, a slow reader skips to the newest frame."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from orstream.edge.web.frame_slot import FrameSlot, WebFrames
from orstream.streams.frame import Frame


def frame(index: int) -> Frame:
    return Frame(np.zeros((4, 6, 3), np.uint8), index * 1000, index * 1000, index, "or1")


def test_a_reader_is_woken_by_a_write_from_another_thread() -> None:
    slot = FrameSlot()

    async def read() -> tuple[int, Frame]:
        waiting = asyncio.ensure_future(slot.newer_than(0))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        threading.Thread(target=slot.put, args=(frame(7),)).start()
        return await asyncio.wait_for(waiting, 2.0)

    version, got = asyncio.run(read())
    assert (version, got.index) == (1, 7)


def test_a_slow_reader_gets_the_newest_frame_only() -> None:
    frames = WebFrames(("or1",))
    sink = frames.sink("or1")
    for index in range(5):
        sink.write(frame(index))
    sink.close()  # the last picture stays for whoever watches
    version, got = asyncio.run(frames.slots["or1"].newer_than(0))
    assert (version, got.index) == (5, 4)
