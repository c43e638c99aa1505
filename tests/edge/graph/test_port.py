"""Connections into input ports: bounded, each drop policy does what it says, drops are counted,
rates keep only the due frames of each stream."""

import threading
import time

import pytest

from orstream.edge.graph.port import Connection, InputSpec, PortClosed
from orstream.errors import OrstreamError
from orstream.streams.frame import Frame


def test_latest_keeps_only_the_newest_and_counts_the_rest() -> None:
    port: Connection[int] = Connection("p", InputSpec("p", 1, "latest"))
    for item in range(10):
        assert port.put(item)
    assert len(port) == 1
    assert port.get(0) == 9
    assert (port.accepted, port.dropped) == (10, 9)


def test_drop_oldest_keeps_the_newest_capacity_items_in_order() -> None:
    port: Connection[int] = Connection("p", InputSpec("p", 3, "drop_oldest"))
    for item in range(7):
        port.put(item)
    assert [port.get(0), port.get(0), port.get(0)] == [4, 5, 6]
    assert port.dropped == 4
    assert port.get(0.01) is None


def test_block_loses_nothing_and_makes_the_producer_wait() -> None:
    port: Connection[int] = Connection("p", InputSpec("p", 2, "block"))
    received: list[int] = []

    def consume() -> None:
        while True:
            try:
                item = port.get()
            except PortClosed:
                return
            if item is not None:
                time.sleep(0.001)
                received.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for item in range(200):
        assert port.put(item)
        assert len(port) <= 2
    port.close()
    consumer.join(5)
    assert received == list(range(200))
    assert port.dropped == 0


def test_close_wakes_a_blocked_producer_and_drains_consumers() -> None:
    port: Connection[int] = Connection("p", InputSpec("p", 1, "block"))
    port.put(1)
    outcome: list[bool] = []
    producer = threading.Thread(target=lambda: outcome.append(port.put(2)))
    producer.start()
    time.sleep(0.05)
    assert producer.is_alive()
    port.close()
    producer.join(2)
    assert outcome == [False]
    assert port.get() == 1
    with pytest.raises(PortClosed):
        port.get()


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(OrstreamError, match="capacity"):
        InputSpec("p", capacity=0)
    with pytest.raises(OrstreamError, match="unknown drop policy"):
        InputSpec("p", policy="newest")  # type: ignore[arg-type]
    with pytest.raises(OrstreamError, match="rate"):
        InputSpec("p", rate_hz=0)


def frame(stream: str, index: int, fps: float = 10.0) -> Frame:
    return Frame(None, round(index * 1e9 / fps), 0, index, stream)


def test_a_rate_keeps_the_due_frames_of_each_stream_and_skips_the_rest() -> None:
    port: Connection[Frame] = Connection("p", InputSpec("p", 100, "block", rate_hz=2.0))
    for index in range(20):  # 2 s of two 10 fps streams, interleaved
        assert port.put(frame("a", index))
        assert port.put(frame("b", index))
    taken = [port.take() for _ in range(len(port))]
    assert [(f.stream_id, f.index) for f in taken if f is not None] == [
        ("a", 0), ("b", 0), ("a", 5), ("b", 5), ("a", 10), ("b", 10), ("a", 15), ("b", 15)
    ]  # fmt: skip
    assert (port.accepted, port.skipped, port.dropped) == (8, 32, 0)


def test_a_rate_refuses_what_is_not_a_frame() -> None:
    port: Connection[object] = Connection("cam.video->model.frames", InputSpec("p", rate_hz=2.0))
    with pytest.raises(OrstreamError, match=r"cam\.video->model\.frames samples frames.*got a str"):
        port.put("not a frame")
    assert port.accepted == 0


def test_a_stream_filter_says_which_items_flow() -> None:
    port: Connection[Frame] = Connection("p", InputSpec("p"), stream_id="a")
    assert port.wants(frame("a", 0)) and not port.wants(frame("b", 0))


def test_a_dropped_discontinuity_passes_its_flag_to_the_frame_that_replaced_it() -> None:
    port: Connection[Frame] = Connection("p", InputSpec("p", 1, "latest"))
    image = None
    port.put(Frame(image, 0, 0, 0, "cam", discontinuity=False))
    port.put(Frame(image, 1, 1, 1, "cam", discontinuity=True))  # the first after a reconnect
    port.put(Frame(image, 2, 2, 2, "cam"))  # replaces it before the model took it
    frame = port.get(0)
    assert frame is not None and frame.index == 2 and frame.discontinuity
    port.put(Frame(image, 3, 3, 3, "cam"))
    port.put(Frame(image, 4, 4, 4, "cam"))
    later = port.get(0)
    assert later is not None and later.index == 4 and not later.discontinuity
