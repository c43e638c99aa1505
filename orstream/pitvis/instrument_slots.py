"""Instrument probabilities -> the two PitVis instrument slots, as the annotations fill them.

A frame predicted out of patient is (-1, -2); otherwise the (at most two) most probable
instruments 1..18 at or above the threshold fill the slots in order of probability, and a frame
with none is "no instrument visible" (0, -2). Probabilities are per class in model order
(:data:`orstream.labels.INSTRUMENT_CODES`: class 0 is "none visible", class k instrument k).
"""

from __future__ import annotations

import numpy as np

from orstream.labels import INSTRUMENT_CODES, NO_INSTRUMENT, OUT_OF_PATIENT, UNUSED_SLOT


def instrument_slots(steps: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per-frame step codes [N] and instrument probabilities [N, 19] -> PitVis slots [N, 2]."""
    instruments = probs[:, 1:]
    order = np.argsort(-instruments, axis=1)[:, :2]
    best = np.take_along_axis(instruments, order, axis=1)
    codes = np.asarray(INSTRUMENT_CODES[1:])[order]
    slots = np.where(best >= threshold, codes, UNUSED_SLOT)
    slots[:, 0] = np.where(best[:, 0] >= threshold, slots[:, 0], NO_INSTRUMENT)
    slots[steps == OUT_OF_PATIENT] = (OUT_OF_PATIENT, UNUSED_SLOT)
    return slots.astype(np.int64)


def named_slots(step: int, named: dict[int, float]) -> tuple[int, int]:
    """The two PitVis slots of one frame from the instruments named on it (code -> confidence):
    the two most confident in order, "no instrument visible" when none, and (-1, -2) on a frame
    whose step is out of patient."""
    if step == OUT_OF_PATIENT:
        return OUT_OF_PATIENT, UNUSED_SLOT
    codes = sorted(named, key=lambda code: (-named[code], code))[:2]
    if not codes:
        return NO_INSTRUMENT, UNUSED_SLOT
    return codes[0], codes[1] if len(codes) > 1 else UNUSED_SLOT
