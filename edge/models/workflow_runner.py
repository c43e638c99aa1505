"""Online PitVis workflow inference for one stream: frames in, step and instruments out.

A :class:`WorkflowRunner` drives a workflow package (a card whose outputs carry the ``steps``
and ``instruments`` labels) through any backend: it pre-processes each frame as the card says,
carries the temporal state from call to call (fresh at the start and after a discontinuity),
smooths the step online and turns instrument probabilities into the two PitVis slots with the
card's threshold. Feed it frames at the card's ``clip.fps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.edge.backends import Backend
from orstream.edge.models.preprocess import image_spec, preprocessor_for
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_CODES
from orstream.package.card import ModelCard, OutputSpec
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


class WorkflowRunner:
    """Runs a loaded workflow package on one stream, one frame per call.

    Args:
        backend: a backend with the package already loaded.
        card: the package's card.
        min_dwell: online step smoothing (see :class:`orstream.step_smoothing.StepSmoother`);
            default: the card's, which is what the model was validated with.
    """

    def __init__(self, backend: Backend, card: ModelCard, min_dwell: int | None = None):
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
        self._smoother = StepSmoother(
            len(self._step_codes), min_dwell=min_dwell or card.step_smoothing.min_dwell
        )
        self._state = card.initial_state()

    def reset(self) -> None:
        """Forget the stream's past (a seek, reconnect or source switch)."""
        self._state = self.card.initial_state()
        self._smoother.reset()

    def __call__(self, image: np.ndarray, discontinuity: bool = False) -> WorkflowPrediction:
        """Infer on one RGB uint8 frame; ``discontinuity`` resets the past first."""
        if discontinuity:
            self.reset()
        inputs = {self.preprocess.spec.name: self.preprocess(image), **self._state}
        outputs = self.backend.infer(inputs)
        self._state = self.card.next_state(outputs)
        step_probs = _softmax(outputs[self._step_output][0].astype(np.float64))
        instrument_probs = _sigmoid(outputs[self._instrument_output][0].astype(np.float64))
        step_class = self._smoother.update(step_probs)
        step = int(self._step_codes[step_class])
        slots = instrument_slots(np.array([step]), instrument_probs[None], self.threshold)
        first, second = slots[0].tolist()
        return WorkflowPrediction(
            step=step,
            step_confidence=float(step_probs[step_class]),
            instruments=(first, second),
            step_probs=step_probs,
            instrument_probs=instrument_probs,
        )
