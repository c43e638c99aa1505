"""Where results leave the graph: the gRPC result hub, and each stream's PitVis CSVs."""

from __future__ import annotations

from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.operators.pitvis_writer import PitvisResultsWriter
from orstream.edge.service.result_hub import ResultHub

RESULTS_QUEUE = 256
"""Results a publisher or writer holds before its producer waits: results are small and rare
(a few per second per stream), so this only fills if the consumer is stuck."""


class PublishOp(Operator):
    """Hands every result (workflow results and masks, of every stream) to the result hub,
    which fans them out to gRPC subscribers and keeps each stream's step timeline."""

    def __init__(self, hub: ResultHub, name: str = "publish") -> None:
        self.hub = hub
        super().__init__(name)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("results", capacity=RESULTS_QUEUE, policy="block")

    def compute(self, received: Received) -> None:
        for result in received["results"]:
            self.hub.publish(result)
            self.meter.processed += 1


class PitvisWriterOp(Operator):
    """Collects one stream's workflow results and writes its PitVis submission CSVs at the end
    (whatever was inferred is written, also when the stream failed)."""

    def __init__(self, stream_id: str, writer: PitvisResultsWriter, name: str | None = None):
        self.stream_id = stream_id
        self.writer = writer
        super().__init__(name or f"{stream_id}.pitvis")

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("results", capacity=RESULTS_QUEUE, policy="block")

    def compute(self, received: Received) -> None:
        for result in received["results"]:
            self.writer.add(result)
            self.meter.processed += 1

    def on_stop(self) -> None:
        self.writer.write()
