"""The PitVis-2023 metrics, per video, on PitVis codes.

Steps: frames whose truth is -1 (out of patient), 11 or 13 are removed from truth and prediction
alike; the step score is the mean of the macro-F1 and the edit score of what is left.

- Macro-F1 follows scikit-learn's ``f1_score(average="macro", zero_division=1)``: the classes are
  those present in the filtered truth or prediction, each class scores ``2 tp / (n_true +
  n_pred)``, and the scores are averaged without weights. Over that label set ``n_true + n_pred``
  is never 0, so ``zero_division`` never applies: a class the prediction misses, or predicts
  without it being true, scores 0.
- Edit score = 1 - Levenshtein(truth segments, predicted segments) / max(segment counts), where
  segments are runs of equal consecutive codes in the filtered sequences.

Instruments: each frame's two slots form a set of codes, one-hot encoded over the instrument
classes 0..18 (-1 and -2 are not classes: their columns are dropped after encoding). No frame
is removed, out-of-patient frames included. The F1 is scikit-learn's
``f1_score(average="weighted", zero_division=1)`` over the 19 columns: each column scores
``2 tp / (2 tp + fp + fn)`` (1 when that is 0 / 0), weighted by its number of true frames; a
video with no true instrument at all gets the unweighted mean (what scikit-learn 1.9 returns).

- ``f1`` (corrected) encodes truth and prediction over the same columns 0..18.
- ``f1_official`` is what the challenge's script (``helper_scripts/evaluation_instruments.py``)
  returns: it fits one label binarizer on the truth and another on the prediction, so each
  matrix's columns are the classes present in its own input, sorted, followed by the classes
  absent from it in ascending order; column j of one is then compared with column j of the
  other even where they stand for different classes. When truth and prediction hold the same
  classes it equals ``f1``.

A video with nothing left after filtering (or, for instruments, no frame) has NaN metrics;
:func:`average_videos` leaves NaN out of the mean over videos.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_CODES, INSTRUMENT_SLOT_CODES, STEP_CODES

STEP_CODES_NOT_SCORED = (-1, 11, 13)
"""Truth step codes whose frames the PitVis step metrics leave out."""


@dataclass(frozen=True)
class StepMetrics:
    """Step metrics of one video; NaN when no frame is left after filtering."""

    f1: float
    edit: float
    score: float


@dataclass(frozen=True)
class InstrumentMetrics:
    """Instrument F1 of one video: corrected and as the official script computed it."""

    f1: float
    f1_official: float


def video_step_metrics(truth: np.ndarray, pred: np.ndarray) -> StepMetrics:
    """PitVis step metrics of one video from per-second step codes ([N] each)."""
    truth, pred = _paired(truth, pred, 1, STEP_CODES)
    kept = ~np.isin(truth, STEP_CODES_NOT_SCORED)
    truth, pred = truth[kept], pred[kept]
    if truth.size == 0:
        return StepMetrics(f1=math.nan, edit=math.nan, score=math.nan)
    f1 = macro_f1(truth, pred)
    edit = edit_score(truth, pred)
    return StepMetrics(f1=f1, edit=edit, score=(f1 + edit) / 2)


def video_instrument_metrics(truth: np.ndarray, pred: np.ndarray) -> InstrumentMetrics:
    """PitVis instrument F1 of one video from per-second slot codes ([N, 2] each)."""
    truth, pred = _paired(truth, pred, 2, INSTRUMENT_SLOT_CODES)
    if truth.shape[0] == 0:
        return InstrumentMetrics(f1=math.nan, f1_official=math.nan)
    truth_hot, pred_hot = _multi_hot(truth), _multi_hot(pred)
    official = column_weighted_f1(
        truth_hot[:, binarizer_columns(truth_hot)], pred_hot[:, binarizer_columns(pred_hot)]
    )
    return InstrumentMetrics(f1=column_weighted_f1(truth_hot, pred_hot), f1_official=official)


def binarizer_columns(hot: np.ndarray) -> np.ndarray:
    """The column order the official script's binarizer gave a [N, 19] multi-hot matrix: the
    classes present in it, sorted, then the absent ones in ascending order."""
    present = hot.any(axis=0)
    return np.concatenate([np.flatnonzero(present), np.flatnonzero(~present)])


def column_weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """``2 tp / (2 tp + fp + fn)`` per column of boolean [N, K] matrices (1 for a column with
    neither true nor predicted frames: ``zero_division=1``), averaged with each column's true
    count as its weight, or without weights when no column has a true frame."""
    hits = (truth & pred).sum(axis=0)
    wrong = (truth ^ pred).sum(axis=0)
    denominator = 2 * hits + wrong
    scores = np.where(denominator > 0, 2 * hits / np.maximum(denominator, 1), 1.0)
    weights = truth.sum(axis=0)
    if weights.sum() == 0:
        return float(scores.mean())
    return float(np.average(scores, weights=weights))


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes present in ``truth`` or ``pred`` (non-empty, [N])."""
    classes = np.union1d(truth, pred)
    scores = [
        2
        * np.count_nonzero((truth == c) & (pred == c))
        / (np.count_nonzero(truth == c) + np.count_nonzero(pred == c))
        for c in classes
    ]
    return float(np.mean(scores))


def segments(sequence: np.ndarray) -> np.ndarray:
    """The code of each run of equal consecutive values of ``sequence``."""
    if sequence.size == 0:
        return sequence
    starts = np.flatnonzero(np.diff(sequence)) + 1
    return sequence[np.concatenate([[0], starts])]


def levenshtein(a: np.ndarray, b: np.ndarray) -> int:
    """Edit distance (insertions, deletions, substitutions of one element each)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a.tolist(), start=1):
        current = [i]
        for j, y in enumerate(b.tolist(), start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def edit_score(truth: np.ndarray, pred: np.ndarray) -> float:
    """1 - Levenshtein(segment sequences) / max(segment counts), for non-empty sequences."""
    truth_segments, pred_segments = segments(truth), segments(pred)
    longest = max(len(truth_segments), len(pred_segments))
    return 1.0 - levenshtein(truth_segments, pred_segments) / longest


def average_videos(values: Iterable[float]) -> float:
    """Mean over videos, leaving out videos whose metric is NaN; NaN when none is defined."""
    defined = [value for value in values if not math.isnan(value)]
    return float(np.mean(defined)) if defined else math.nan


def _paired(
    truth: np.ndarray, pred: np.ndarray, width: int, codes: tuple[int, ...] | frozenset[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as int64 of one shape ([N] or [N, width]) holding valid PitVis codes."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    ndim = 1 if width == 1 else 2
    for name, array in (("truth", truth), ("prediction", pred)):
        if array.ndim != ndim or (ndim == 2 and array.shape[1] != width):
            expected = "[N]" if ndim == 1 else f"[N, {width}]"
            raise ValueError(f"{name} has shape {array.shape}, expected {expected}")
        if not np.isin(array, np.array(sorted(codes))).all():
            raise ValueError(f"{name} holds values that are not PitVis codes")
    if len(truth) != len(pred):
        raise OrstreamError(f"truth has {len(truth)} frames but the prediction has {len(pred)}")
    return truth.astype(np.int64), pred.astype(np.int64)


def _multi_hot(slots: np.ndarray) -> np.ndarray:
    """Boolean [N, 19] rows: class c is set when a slot holds instrument code c (0..18)."""
    hot = np.zeros((len(slots), len(INSTRUMENT_CODES)), dtype=bool)
    rows, columns = np.nonzero(slots >= 0)
    hot[rows, slots[rows, columns]] = True
    return hot
