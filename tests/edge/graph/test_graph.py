"""The graph API: flows, batches across connections, stream routing, draining, failures, stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from orstream.edge.graph.graph import Graph
from orstream.edge.graph.operator import Operator, OperatorSpec, Received, SourceOperator
from orstream.errors import OrstreamError


@dataclass(frozen=True)
class Item:
    stream_id: str
    value: int


class Numbers(SourceOperator):
    """Emits ``count`` items of one stream (forever when count is None), ``every_s`` apart."""

    def __init__(self, stream: str, count: int | None, every_s: float = 0.0) -> None:
        self.stream, self.count, self.every_s = stream, count, every_s
        self.stopped = threading.Event()
        super().__init__(f"{stream}.numbers")

    def setup(self, spec: OperatorSpec) -> None:
        spec.output("out")

    def generate(self) -> None:
        value = 0
        while not self.stopped.is_set() and (self.count is None or value < self.count):
            self.emit("out", Item(self.stream, value))
            value += 1
            time.sleep(self.every_s)

    def interrupt(self) -> None:
        self.stopped.set()


class Collect(Operator):
    """Keeps what arrives on ``in``, and the size of each call's batch."""

    def __init__(self, name: str, delay_s: float = 0.0, capacity: int = 4) -> None:
        self.delay_s, self.capacity = delay_s, capacity
        self.items: list[Item] = []
        self.batches: list[int] = []
        self.idle_calls = 0
        self.stopped = False
        super().__init__(name)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("in", capacity=self.capacity, policy="block")
        spec.output("out")

    def compute(self, received: Received) -> None:
        self.batches.append(len(received["in"]))
        time.sleep(self.delay_s)
        for item in received["in"]:
            self.items.append(item)
            self.emit("out", Item(item.stream_id, item.value * 2))

    def on_idle(self) -> None:
        self.idle_calls += 1

    def on_stop(self) -> None:
        self.stopped = True


class Broken(Collect):
    def compute(self, received: Received) -> None:
        raise OrstreamError("device lost")


def test_a_chain_drains_every_item_in_order_and_finishes() -> None:
    graph = Graph()
    source, double, collect = Numbers("a", 50), Collect("double"), Collect("collect")
    graph.add_flow(source, double, {"out": "in"}, capacity=2)
    graph.add_flow(double, collect, {"out": "in"})
    graph.run()
    assert [item.value for item in collect.items] == [2 * v for v in range(50)]
    assert all(op.state == "finished" for op in graph.operators.values())
    assert double.stopped and collect.stopped
    assert graph.status(["double"])[0].inputs[0].accepted == 50


def test_one_operator_fed_by_several_streams_gets_a_batch_of_one_item_each() -> None:
    graph = Graph()
    model = Collect("model", delay_s=0.01, capacity=1)
    sources = [Numbers(f"cam{i}", 20) for i in range(3)]
    for source in sources:
        graph.add_flow(source, model, {"out": "in"})
    graph.run()
    assert len(model.items) == 60  # block policy: nothing lost
    assert max(model.batches) == 3  # while it worked, every stream's next item waited
    for stream in ("cam0", "cam1", "cam2"):
        values = [item.value for item in model.items if item.stream_id == stream]
        assert values == list(range(20))  # each stream in order


def test_a_flow_for_one_stream_carries_only_that_stream() -> None:
    graph = Graph()
    shared = Collect("shared")
    per_stream = {name: Collect(f"{name}.overlay") for name in ("a", "b")}
    for name in ("a", "b"):
        graph.add_flow(Numbers(name, 10), shared, {"out": "in"})
        graph.add_flow(shared, per_stream[name], {"out": "in"}, stream_id=name)
    graph.run()
    for name, collect in per_stream.items():
        assert [item.stream_id for item in collect.items] == [name] * 10


def test_a_failing_operator_drains_without_computing_and_the_rest_goes_on() -> None:
    failed: list[str] = []
    graph = Graph(on_failure=lambda op: failed.append(op.name))
    source = Numbers("a", 200)
    broken, healthy = Broken("broken", capacity=1), Collect("healthy")
    graph.add_flow(source, broken, {"out": "in"})  # block policy, capacity 1
    graph.add_flow(source, healthy, {"out": "in"})
    graph.run()  # would hang if the broken operator stopped taking items
    assert failed == ["broken"]
    assert broken.state == "failed" and broken.error == "device lost"
    assert len(healthy.items) == 200 and healthy.state == "finished"
    assert broken.stopped  # on_stop still ran, to close what it opened


def test_idle_operators_are_told_when_nothing_comes() -> None:
    graph = Graph()
    collect = Collect("collect")
    collect.idle_s = 0.05
    graph.add_flow(Numbers("a", 3, every_s=0.3), collect, {"out": "in"})
    graph.run()
    assert len(collect.items) == 3
    assert 10 <= collect.idle_calls <= 20  # three gaps of 0.3 s, one call per 0.05 s


def test_stop_interrupts_the_sources_and_drains_the_rest() -> None:
    graph = Graph()
    collect = Collect("collect")
    graph.add_flow(Numbers("a", None, every_s=0.001), collect, {"out": "in"})
    graph.start()
    time.sleep(0.1)
    assert graph.stop(5.0)
    assert collect.items and collect.stopped
    assert [item.value for item in collect.items] == list(range(len(collect.items)))


def test_taps_see_every_item_in_the_emitting_thread() -> None:
    graph = Graph()
    source = Numbers("a", 5)
    seen: list[tuple[int, str]] = []
    graph.add_tap(
        source, "out", lambda item: seen.append((item.value, threading.current_thread().name))
    )
    graph.add_flow(source, Collect("collect"), {"out": "in"})
    graph.run()
    assert [value for value, _ in seen] == list(range(5))
    assert {thread for _, thread in seen} == {"edge:a.numbers"}


def test_bad_flows_are_one_clear_line() -> None:
    graph = Graph()
    source, collect = Numbers("a", 1), Collect("collect")
    with pytest.raises(OrstreamError, match=r"a.numbers has no output 'video' \(outputs: out\)"):
        graph.add_flow(source, collect, {"video": "in"})
    with pytest.raises(OrstreamError, match=r"collect has no input 'frames' \(inputs: in\)"):
        graph.add_flow(source, collect, {"out": "frames"})
    with pytest.raises(OrstreamError, match="two operators named 'collect'"):
        graph.add_flow(source, Collect("collect"), {"out": "in"})
