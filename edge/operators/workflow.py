"""The workflow recognizer as an operator: one loaded model serving every stream, batched."""

from __future__ import annotations

import time

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.model_status import model_statuses
from orstream.latency import LatencySummary
from orstream.status import ModelStatus


class WorkflowOp(Operator):
    """Step and instrument results for the frames of every stream connected to ``frames``.

    Each stream's flow into ``frames`` is its own connection (capacity 1, newest frame wins, at
    the model's rate by default), so the frames of several streams that are due together arrive
    in one compute call and go through the backend as one batch. Results leave on ``results``,
    one per frame, tagged with their stream.

    Args:
        model: the loaded recognizer.
        name: the operator's name (default ``workflow``).
    """

    def __init__(self, model: WorkflowModel, name: str = "workflow") -> None:
        self.model = model
        self.frame_to_result: dict[str, StageMeter] = {}
        self.inferred: dict[str, int] = {}
        super().__init__(name)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("frames", capacity=1, policy="latest", rate_hz=self.model.rate_hz)
        spec.output("results")

    def compute(self, received: Received) -> None:
        frames = received["frames"]
        if not frames:
            return
        started = time.monotonic_ns()
        results = self.model.infer(frames)
        # One sample per call: what the backend and its pre-processing cost the batch.
        self.meter.record_since(started)
        for result in results:
            stream = result.stream_id
            meter = self.frame_to_result.get(stream)
            if meter is None:
                meter = self.frame_to_result[stream] = StageMeter(f"{stream}.frame_to_result")
            meter.record(result.latency_ms)
            self.inferred[stream] = self.inferred.get(stream, 0) + 1
            self.emit("results", result)

    def latency(self, stream: str | None = None) -> LatencySummary:
        """Frame-to-result latency of one stream, or of all streams together."""
        meters = (
            list(self.frame_to_result.values())
            if stream is None
            else ([self.frame_to_result[stream]] if stream in self.frame_to_result else [])
        )
        return StageMeter.merged(meters)

    def model_status(self, streams: list[str]) -> list[ModelStatus]:
        """The model as ``GetStatus`` lists it: one entry per stream it serves."""
        return model_statuses(
            self,
            self.model.package.card,
            self.model.backend.label,
            getattr(self.model.backend, "selection", ""),
            self.model.rate_hz,
            self.inferred,
            streams,
        )
