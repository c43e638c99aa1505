"""Online step smoothing: fewer spurious segments, bounded lag, strictly causal."""

import numpy as np
import pytest

from orstream.pitvis.metrics import edit_score, segments
from orstream.step_smoothing import StepSmoother, smooth_step_sequence

NUM_CLASSES = 15


def one_hot(classes: list[int]) -> np.ndarray:
    return np.eye(NUM_CLASSES)[classes]


def noisy_probs(truth: np.ndarray, seed: int, flip: float = 0.2) -> np.ndarray:
    """Probabilities whose argmax is the truth except on a random ``flip`` share of samples."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=len(truth)) * 0.3
    probs[np.arange(len(truth)), truth] += 0.7
    flipped = np.flatnonzero(rng.random(len(truth)) < flip)
    wrong = (truth[flipped] + rng.integers(1, NUM_CLASSES, len(flipped))) % NUM_CLASSES
    probs[flipped, wrong] += 0.8
    return probs / probs.sum(axis=1, keepdims=True)


def test_noisy_predictions_give_fewer_segments_and_a_better_edit_score() -> None:
    truth = np.repeat([1, 2, 3, 5, 4, 6], [40, 25, 60, 30, 20, 50])
    for seed in range(3):
        probs = noisy_probs(truth, seed)
        raw = probs.argmax(axis=1)
        smoothed = smooth_step_sequence(probs, min_dwell=3)
        assert len(segments(raw)) > 3 * len(segments(truth))
        assert len(segments(smoothed)) < len(segments(raw)) / 3
        assert edit_score(truth, smoothed) > edit_score(truth, raw) + 0.3
        assert np.mean(smoothed == truth) > 0.9


@pytest.mark.parametrize("min_dwell", [1, 3, 5])
def test_a_sustained_change_is_followed_after_min_dwell_samples(min_dwell: int) -> None:
    smoothed = smooth_step_sequence(one_hot([2] * 10 + [7] * 10), min_dwell=min_dwell)
    first_new = int(np.flatnonzero(smoothed == 7)[0])
    assert first_new == 10 + min_dwell - 1
    assert (smoothed[:first_new] == 2).all() and (smoothed[first_new:] == 7).all()


def test_a_blip_shorter_than_min_dwell_is_ignored() -> None:
    smoothed = smooth_step_sequence(one_hot([4] * 8 + [9] * 2 + [4] * 8), min_dwell=3)
    assert (smoothed == 4).all()


def test_output_at_t_does_not_depend_on_later_samples() -> None:
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=120)
    reference = smooth_step_sequence(probs, min_dwell=2)
    for cut in (0, 1, 30, 77, 119):
        changed = probs.copy()
        changed[cut + 1 :] = rng.dirichlet(np.ones(NUM_CLASSES), size=len(probs) - cut - 1)
        assert np.array_equal(
            smooth_step_sequence(changed, min_dwell=2)[: cut + 1], reference[: cut + 1]
        )
        assert np.array_equal(
            smooth_step_sequence(probs[: cut + 1], min_dwell=2), reference[: cut + 1]
        )


def test_streaming_updates_equal_the_sequence_helper() -> None:
    probs = noisy_probs(np.repeat([0, 3, 8], 20), seed=11)
    smoother = StepSmoother(NUM_CLASSES, min_dwell=4)
    streamed = [smoother.update(sample) for sample in probs]
    assert streamed == smooth_step_sequence(probs, min_dwell=4).tolist()


def test_reset_forgets_the_past_at_a_discontinuity() -> None:
    smoother = StepSmoother(NUM_CLASSES, min_dwell=5)
    for sample in one_hot([3] * 20):
        assert smoother.update(sample) == 3
    # Without a reset, class 10 would need 5 samples to take over; after one it is immediate.
    smoother.reset()
    assert smoother.update(one_hot([10])[0]) == 10
    fresh = StepSmoother(NUM_CLASSES, min_dwell=5)
    assert fresh.update(one_hot([10])[0]) == 10


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_dwell"):
        StepSmoother(NUM_CLASSES, min_dwell=0)
    with pytest.raises(ValueError, match="alpha"):
        StepSmoother(NUM_CLASSES, alpha=0.0)
    with pytest.raises(ValueError, match="shape"):
        StepSmoother(NUM_CLASSES).update(np.ones(3))
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        smooth_step_sequence(np.ones(NUM_CLASSES))
