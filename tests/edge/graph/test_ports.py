"""Runtime ports: bounded, each drop policy does what it says, drops are counted."""

import threading
import time

import pytest

from orstream.edge.graph.port import Port, PortClosed
from orstream.errors import OrstreamError


def test_latest_keeps_only_the_newest_and_counts_the_rest() -> None:
    port: Port[int] = Port("p", capacity=1, policy="latest")
    for item in range(10):
        assert port.put(item)
    assert len(port) == 1
    assert port.get(0) == 9
    assert (port.accepted, port.dropped) == (10, 9)


def test_drop_oldest_keeps_the_newest_capacity_items_in_order() -> None:
    port: Port[int] = Port("p", capacity=3, policy="drop_oldest")
    for item in range(7):
        port.put(item)
    assert [port.get(0), port.get(0), port.get(0)] == [4, 5, 6]
    assert port.dropped == 4
    assert port.get(0.01) is None


def test_block_loses_nothing_and_makes_the_producer_wait() -> None:
    port: Port[int] = Port("p", capacity=2, policy="block")
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
    port: Port[int] = Port("p", capacity=1, policy="block")
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
        Port("p", capacity=0)
    with pytest.raises(OrstreamError, match="unknown drop policy"):
        Port("p", policy="newest")  # type: ignore[arg-type]
