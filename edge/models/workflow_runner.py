"""Online PitVis workflow inference for any number of streams: frames in, step and instruments out.

A :class:`WorkflowRunner` drives a workflow package (a card whose outputs carry the ``steps``
and ``instruments`` labels) through any backend: it pre-processes each frame as the card says,
carries each stream's temporal state from call to call (fresh at the start and after a
discontinuity), smooths each stream's step online and turns instrument probabilities into the
two PitVis slots with the card's threshold. Feed each stream frames at the card's ``clip.fps``.

Frames of several streams due at the same time go through one backend call when the backend
takes a batch (a package exported with a dynamic batch axis): the images and each stream's
state tensors are stacked along the batch axis, and row ``i`` of every output belongs to stream
``i``, as Triton's sequence batcher does with per-sequence state. Otherwise (a batch-1 package)
the frames go one call each; the results are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orstream.edge.backends import Backend
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_CODES, OUT_OF_PATIENT
from orstream.package.card import ModelCard, OutputSpec
from orstream.package.preprocess import image_spec, preprocessor_for
from orstream.pitvis.instrument_slots import instrument_slots
from orstream.step_smoothing import StepSmoother

STEP_LABELS = "steps"
INSTRUMENT_LABELS = "instruments"


@dataclass(frozen=True)
class WorkflowPrediction:
    """What the runner concluded from one frame, in PitVis codes."""

    step: int
    step_confidence: float
    instruments: tuple[int, int]
    step_probs: np.ndarray
    instrument_probs: np.ndarray
    out_of_patient: float = 0.0
    """The model's own probability, on this frame alone, that the view is out of patient."""


@dataclass(frozen=True)
class StreamFrame:
    """One frame of one stream, as the runner takes it.

    Attributes:
        stream: the stream's id (its temporal state is kept under it).
        image: RGB uint8 (height, width, 3).
        discontinuity: forget the stream's past first (a seek, reconnect or source switch).
    """

    stream: str
    image: np.ndarray
    discontinuity: bool = False


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _output_with_labels(card: ModelCard, labels: str) -> OutputSpec:
    for output in card.outputs:
        if output.labels == labels:
            return output
    raise OrstreamError(f"package {card.name!r} has no output with {labels!r} labels")


class _StreamState:
    """The past of one stream: the graph's state tensors and the step smoother."""

    def __init__(self, card: ModelCard, classes: int, min_dwell: int) -> None:
        self.card = card
        self.tensors = card.initial_state()
        self.smoother = StepSmoother(classes, min_dwell=min_dwell)

    def reset(self) -> None:
        self.tensors = self.card.initial_state()
        self.smoother.reset()


class WorkflowRunner:
    """Runs a loaded workflow package on any number of streams.

    Args:
        backend: a backend with the package already loaded.
        card: the package's card.
        min_dwell: online step smoothing (see :class:`orstream.step_smoothing.StepSmoother`);
            default: the card's, which is what the model was validated with.
        max_batch: frames per backend call at most (default: what the backend takes).
    """

    def __init__(
        self,
        backend: Backend,
        card: ModelCard,
        min_dwell: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        self.backend = backend
        self.card = card
        self.preprocess = preprocessor_for(backend, image_spec(card))
        step_output = _output_with_labels(card, STEP_LABELS)
        instrument_output = _output_with_labels(card, INSTRUMENT_LABELS)
        self._step_output = step_output.name
        self._instrument_output = instrument_output.name
        self._step_codes = np.array([label.code for label in card.labels[STEP_LABELS]])
        instrument_codes = tuple(label.code for label in card.labels[INSTRUMENT_LABELS])
        if instrument_codes != INSTRUMENT_CODES:
            raise OrstreamError(
                f"package {card.name!r}: instrument classes {instrument_codes} are not the PitVis "
                f"order {INSTRUMENT_CODES}"
            )
        self.threshold = card.thresholds.get(instrument_output.name, 0.5)
        self._min_dwell = min_dwell or card.step_smoothing.min_dwell
        self.max_batch = max(1, max_batch or backend.max_batch)
        self._streams: dict[str, _StreamState] = {}
        self.calls = 0
        """Backend calls made so far (fewer than frames when streams were batched)."""

    def reset(self, stream: str = "") -> None:
        """Forget a stream's past (a seek, reconnect or source switch)."""
        self._state(stream).reset()

    def forget(self, stream: str) -> None:
        """Drop a stream's state altogether (the stream is gone)."""
        self._streams.pop(stream, None)

    def __call__(
        self, image: np.ndarray, discontinuity: bool = False, stream: str = ""
    ) -> WorkflowPrediction:
        """Infer on one RGB uint8 frame of one stream; ``discontinuity`` resets its past first."""
        return self.run([StreamFrame(stream, image, discontinuity)])[0]

    def run(self, frames: Sequence[StreamFrame]) -> list[WorkflowPrediction]:
        """Infer on one frame of each of several streams, in as few backend calls as it can.

        Raises:
            OrstreamError: two frames of the same stream (its state cannot advance twice in one
                call), or what the backend raises.
        """
        streams = [frame.stream for frame in frames]
        if len(set(streams)) != len(streams):
            raise OrstreamError(f"one frame per stream per call, got streams {streams}")
        predictions: list[WorkflowPrediction] = []
        for start in range(0, len(frames), self.max_batch):
            predictions += self._run_batch(frames[start : start + self.max_batch])
        return predictions

    def _run_batch(self, frames: Sequence[StreamFrame]) -> list[WorkflowPrediction]:
        states = [self._state(frame.stream) for frame in frames]
        for frame, state in zip(frames, states, strict=True):
            if frame.discontinuity:
                state.reset()
        images = self.preprocess.batch([frame.image for frame in frames])
        inputs = {self.preprocess.spec.name: images}
        for name in states[0].tensors:
            inputs[name] = np.concatenate([state.tensors[name] for state in states])
        outputs = self.backend.infer(inputs)
        self.calls += 1
        predictions = []
        for row, state in enumerate(states):
            mine = {name: value[row : row + 1] for name, value in outputs.items()}
            state.tensors = self.card.next_state(mine)
            predictions.append(self._conclude(mine, state))
        return predictions

    def _conclude(self, outputs: dict[str, np.ndarray], state: _StreamState) -> WorkflowPrediction:
        step_probs = _softmax(outputs[self._step_output][0].astype(np.float64))
        instrument_probs = _sigmoid(outputs[self._instrument_output][0].astype(np.float64))
        step_class = state.smoother.update(step_probs)
        step = int(self._step_codes[step_class])
        slots = instrument_slots(np.array([step]), instrument_probs[None], self.threshold)
        first, second = slots[0].tolist()
        return WorkflowPrediction(
            step=step,
            step_confidence=float(step_probs[step_class]),
            instruments=(first, second),
            step_probs=step_probs,
            instrument_probs=instrument_probs,
            out_of_patient=min(1.0, float(step_probs[self._step_codes == OUT_OF_PATIENT].sum())),
        )

    def _state(self, stream: str) -> _StreamState:
        state = self._streams.get(stream)
        if state is None:
            classes = len(self._step_codes)
            state = self._streams[stream] = _StreamState(self.card, classes, self._min_dwell)
        return state
