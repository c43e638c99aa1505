"""A workflow package running on one stream: frames in, :class:`FrameResult` out."""

from __future__ import annotations

import time

import numpy as np

from orstream.edge.backends import Backend
from orstream.edge.models.workflow_runner import WorkflowRunner
from orstream.labels import OUT_OF_PATIENT
from orstream.package.loading import ModelPackage
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.streams.frame import Frame


class WorkflowModel:
    """The step and instrument recognizer of one stream, at its configured rate.

    Args:
        package: the loaded workflow package.
        backend: a backend with the package loaded.
        rate_hz: frames per second to infer; default the card's ``clip.fps``, the rate the
            temporal model was trained at.
    """

    def __init__(self, package: ModelPackage, backend: Backend, rate_hz: float | None = None):
        self.package = package
        self.backend = backend
        self.runner = WorkflowRunner(backend, package.card)
        self.rate_hz = rate_hz or package.card.clip.fps
        self.label = f"{package.card.name}@{package.card.version}"

    def infer(self, frame: Frame) -> FrameResult:
        """Run on one frame (resetting the past on a discontinuity)."""
        prediction = self.runner(np.asarray(frame.image), frame.discontinuity)
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
            produced_ns=time.monotonic_ns(),
            models=(self.label,),
            step=StepResult(prediction.step, prediction.step_confidence),
            instruments=InstrumentResult(prediction.instruments, present),
        )

    def reset(self) -> None:
        self.runner.reset()
