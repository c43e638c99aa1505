"""The workflow recognizer as an operator: one loaded model serving every stream, batched."""

from __future__ import annotations

import time

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.models.mask_naming import MaskNaming
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.model_status import model_statuses
from orstream.latency import LatencySummary
from orstream.results import FrameResult
from orstream.status import ModelStatus

NAMING_POLL_S = 0.05
"""How often results waiting for masks are checked when nothing arrives."""


class WorkflowOp(Operator):
    """Step and instrument results for the frames of every stream connected to ``frames``.

    Each stream's flow into ``frames`` is its own connection (capacity 1, newest frame wins, at
    the model's rate by default), so the frames of several streams that are due together arrive
    in one compute call and go through the backend as one batch. Results leave on ``results``,
    one per frame, tagged with their stream.

    With ``naming``, the live masks' results arrive on ``masks`` and each result waits for the
    masks of its own frame to name its instruments
    (:class:`~orstream.edge.models.mask_naming.MaskNaming`).

    Args:
        model: the loaded recognizer.
        naming: name instruments with the live masks.
        name: the operator's name (default ``workflow``).
    """

    def __init__(
        self, model: WorkflowModel, naming: MaskNaming | None = None, name: str = "workflow"
    ) -> None:
        self.model = model
        self.naming = naming
        self.frame_to_result: dict[str, StageMeter] = {}
        self.inferred: dict[str, int] = {}
        if naming is not None:
            self.idle_s = NAMING_POLL_S
        super().__init__(name)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("frames", capacity=1, policy="latest", rate_hz=self.model.rate_hz)
        if self.naming is not None:
            spec.input("masks", capacity=1, policy="latest")
        spec.output("results")

    def compute(self, received: Received) -> None:
        naming = self.naming
        frames = received["frames"]
        if naming is not None:
            for frame in frames:
                if frame.discontinuity:
                    self._send(naming.forget(frame.stream_id))
            for masks in received.get("masks", ()):
                self._send(naming.note(masks))
        if frames:
            started = time.monotonic_ns()
            results = self.model.infer(frames)
            # One sample per call: what the backend and its pre-processing cost the batch.
            self.meter.record_since(started)
            for result in results:
                stream = result.stream_id
                self.inferred[stream] = self.inferred.get(stream, 0) + 1
                self._send([result] if naming is None else naming.hold(result))
        if naming is not None:
            self._send(naming.due())

    def on_idle(self) -> None:
        if self.naming is not None:
            self._send(self.naming.due())

    def on_stop(self) -> None:
        if self.naming is not None:
            self._send(self.naming.flush())

    def _send(self, results: list[FrameResult]) -> None:
        for result in results:
            stream = result.stream_id
            meter = self.frame_to_result.get(stream)
            if meter is None:
                meter = self.frame_to_result[stream] = StageMeter(f"{stream}.frame_to_result")
            meter.record(result.latency_ms)
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
