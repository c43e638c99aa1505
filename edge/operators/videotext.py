"""The video-text model as an operator: zero-shot steps and searchable clips for every stream."""

from __future__ import annotations

import time

from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.models.video_text_model import VideoTextModel
from orstream.edge.operators.model_status import model_statuses
from orstream.status import ModelStatus


class VideoTextOp(Operator):
    """Zero-shot step results, and each stream's clips kept for search, from the frames of
    every stream connected to ``frames``.

    Like the recognizer, each stream's flow into ``frames`` keeps only its newest frame, at the
    model's own rate (the card's clip rate), so frames of several streams due together go
    through the clip encoder as one batch. Results leave on ``results`` with only their
    ``zeroshot_step`` set.

    Args:
        model: the loaded video-text model.
        name: the operator's name (default ``videotext``).
    """

    def __init__(self, model: VideoTextModel, name: str = "videotext") -> None:
        self.model = model
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
        self.meter.record_since(started)
        for result in results:
            self.inferred[result.stream_id] = self.inferred.get(result.stream_id, 0) + 1
            self.emit("results", result)

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
