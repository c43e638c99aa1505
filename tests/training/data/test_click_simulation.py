"""Corrective clicks sampled from the error region of a prediction."""

import numpy as np
import pytest

from orstream.training.data.click_simulation import Click, clicks_to_prompt, next_click


def _rect(shape: tuple[int, int], top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def test_a_missed_region_gets_a_positive_click_inside_it() -> None:
    truth = _rect((60, 80), 10, 20, 40, 60)
    prediction = _rect((60, 80), 10, 20, 40, 35)  # the right part is missed
    for seed in range(10):
        click = next_click(prediction, truth, np.random.default_rng(seed))
        assert click is not None and click.positive
        assert truth[click.y, click.x] and not prediction[click.y, click.x]


def test_a_false_positive_region_gets_a_negative_click_inside_it() -> None:
    truth = _rect((60, 80), 10, 10, 30, 30)
    prediction = truth | _rect((60, 80), 35, 40, 58, 78)
    for seed in range(10):
        click = next_click(prediction, truth, np.random.default_rng(seed))
        assert click is not None and not click.positive
        assert prediction[click.y, click.x] and not truth[click.y, click.x]


def test_the_larger_error_region_is_corrected_first() -> None:
    truth = _rect((60, 80), 0, 0, 10, 10) | _rect((60, 80), 20, 20, 50, 70)
    prediction = _rect((60, 80), 0, 0, 10, 10) | _rect((60, 80), 0, 60, 8, 68)
    click = next_click(prediction, truth, np.random.default_rng(0))
    assert click == Click(click.x, click.y, True)
    assert 20 <= click.y < 50 and 20 <= click.x < 70

    swapped = next_click(truth, prediction, np.random.default_rng(0))
    assert swapped is not None and not swapped.positive
    assert 20 <= swapped.y < 50 and 20 <= swapped.x < 70


def test_clicks_land_deep_inside_the_region_and_inside_the_frame() -> None:
    # An error covering the whole frame: the frame edge is a boundary, so the click is central.
    truth = np.ones((40, 60), dtype=bool)
    clicks = {next_click(~truth, truth, np.random.default_rng(seed)) for seed in range(20)}
    for click in clicks:
        assert click is not None
        assert 0 <= click.x < 60 and 0 <= click.y < 40
        assert 12 <= click.y <= 27 and 12 <= click.x <= 47
    # A thin error strip on the border still gives a click inside the frame.
    strip = _rect((40, 60), 0, 0, 40, 1)
    edge = next_click(np.zeros_like(strip), strip, np.random.default_rng(0))
    assert edge == Click(0, edge.y, True) and 0 <= edge.y < 40


def test_clicks_are_deterministic_per_seed_and_vary_across_seeds() -> None:
    truth = _rect((100, 100), 10, 10, 90, 90)
    empty = np.zeros_like(truth)
    first = [next_click(empty, truth, np.random.default_rng(seed)) for seed in range(8)]
    again = [next_click(empty, truth, np.random.default_rng(seed)) for seed in range(8)]
    assert first == again
    assert len(set(first)) > 1


def test_a_perfect_prediction_needs_no_click() -> None:
    truth = _rect((20, 20), 5, 5, 15, 15)
    assert next_click(truth, truth, np.random.default_rng(0)) is None
    with pytest.raises(ValueError, match="alike"):
        next_click(truth, truth[:10], np.random.default_rng(0))


def test_interaction_rounds_move_on_to_the_remaining_error() -> None:
    shape = (60, 80)
    big, small = _rect(shape, 5, 5, 45, 45), _rect(shape, 40, 55, 55, 75)
    truth = big | small
    rng = np.random.default_rng(3)
    prediction = np.zeros(shape, dtype=bool)
    clicks: list[Click] = []
    for region in (big, small):
        click = next_click(prediction, truth, rng)
        assert click is not None and click.positive and region[click.y, click.x]
        clicks.append(click)
        prediction = prediction | region  # the model fixed the region the click was in
    assert next_click(prediction, truth, rng) is None
    points, labels = clicks_to_prompt(clicks, max_points=3)
    assert points.dtype == np.float32 and labels.tolist() == [1, 1, -1]
    assert points[:2].tolist() == [[c.x, c.y] for c in clicks]


def test_prompt_keeps_the_latest_clicks_when_there_are_too_many() -> None:
    clicks = [Click(i, i, i % 2 == 0) for i in range(5)]
    points, labels = clicks_to_prompt(clicks, max_points=2)
    assert points.tolist() == [[3.0, 3.0], [4.0, 4.0]]
    assert labels.tolist() == [0, 1]
