"""A workflow package serving every stream of the runtime: frames in, :class:`FrameResult` out."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from orstream.edge.backends import Backend
from orstream.edge.models.workflow_runner import StreamFrame, WorkflowPrediction, WorkflowRunner
from orstream.labels import OUT_OF_PATIENT
from orstream.package.loading import ModelPackage
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.streams.frame import Frame


class WorkflowModel:
    """The step and instrument recognizer, one loaded model for every stream, at one rate.

    Args:
        package: the loaded workflow package.
        backend: a backend with the package loaded.
        rate_hz: frames per second to infer per stream; default the card's ``clip.fps``, the
            rate the temporal model was trained at.
        max_batch: frames of different streams per backend call at most (default: what the
            backend takes).
    """

    def __init__(
        self,
        package: ModelPackage,
        backend: Backend,
        rate_hz: float | None = None,
        max_batch: int | None = None,
    ):
        self.package = package
        self.backend = backend
        self.runner = WorkflowRunner(backend, package.card, max_batch=max_batch)
        self.rate_hz = rate_hz or package.card.clip.fps
        self.label = f"{package.card.name}@{package.card.version}"

    def infer(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """One frame of each of several streams (each resetting its stream's past on a
        discontinuity) -> one result each, in order."""
        predictions = self.runner.run(
            [
                StreamFrame(frame.stream_id, np.asarray(frame.image), frame.discontinuity)
                for frame in frames
            ]
        )
        produced = time.monotonic_ns()
        return [
            self._result(frame, prediction, produced)
            for frame, prediction in zip(frames, predictions, strict=True)
        ]

    def _result(self, frame: Frame, prediction: WorkflowPrediction, produced: int) -> FrameResult:
        probs = prediction.instrument_probs
        above = np.flatnonzero(probs[1:] >= self.runner.threshold) + 1
        if prediction.step == OUT_OF_PATIENT:
            above = above[:0]
        present = tuple(
            (int(code), float(probs[code])) for code in above[np.argsort(-probs[above])]
        )
        return FrameResult(
            stream_id=frame.stream_id,
            index=frame.index,
            pts_ns=frame.pts_ns,
            capture_ns=frame.capture_ns,
            produced_ns=produced,
            models=(self.label,),
            step=StepResult(prediction.step, prediction.step_confidence, prediction.out_of_patient),
            instruments=InstrumentResult(prediction.instruments, present),
        )

    def forget(self, stream: str) -> None:
        """Drop a stream's state altogether (the stream is gone)."""
        self.runner.forget(stream)
