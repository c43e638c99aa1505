"""PitVis metrics against values worked out by hand (the arithmetic is in each test)."""

import math

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.pitvis.metrics import (
    average_videos,
    edit_score,
    levenshtein,
    segments,
    video_instrument_metrics,
    video_step_metrics,
)


def steps(*codes: int) -> np.ndarray:
    return np.array(codes, dtype=np.int64)


def slots(*rows: tuple[int, int]) -> np.ndarray:
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def test_step_metrics_one_wrong_frame() -> None:
    # class 1: tp 1, true 2, pred 1 -> 2/3; class 2: tp 2, true 2, pred 3 -> 4/5; class 3: 1.
    # Segments 1,2,3 on both sides -> edit 1.
    metrics = video_step_metrics(steps(1, 1, 2, 2, 3), steps(1, 2, 2, 2, 3))
    f1 = (2 / 3 + 4 / 5 + 1) / 3
    assert metrics.f1 == pytest.approx(f1)
    assert metrics.edit == 1.0
    assert metrics.score == pytest.approx((f1 + 1) / 2)


def test_frames_with_truth_out_of_patient_11_or_13_are_not_scored() -> None:
    # Left: truth 1,1,2 and prediction 1,1,2, whatever was predicted on the removed frames.
    metrics = video_step_metrics(steps(-1, 1, 11, 1, 13, 2), steps(5, 1, 3, 1, 4, 2))
    assert (metrics.f1, metrics.edit, metrics.score) == (1.0, 1.0, 1.0)


def test_segments_are_counted_after_filtering() -> None:
    # Truth 1,11,1 filters to one segment [1]; the prediction's 3 on that frame goes with it.
    assert video_step_metrics(steps(1, 11, 1), steps(1, 3, 1)).edit == 1.0


def test_predicting_excluded_codes_on_scored_frames_counts_as_wrong() -> None:
    # Truth 2,2 vs prediction 2,11: class 2 -> 2*1/(2+1) = 2/3, class 11 -> 0; macro 1/3.
    # Segments [2] vs [2, 11] -> distance 1 over 2 -> edit 1/2.
    metrics = video_step_metrics(steps(2, 2), steps(2, 11))
    assert metrics.f1 == pytest.approx(1 / 3)
    assert metrics.edit == pytest.approx(0.5)


def test_class_absent_from_prediction_scores_zero() -> None:
    # Class 1: tp 2, true 2, pred 4 -> 4/6; class 2 never predicted -> 0; macro 1/3.
    # Segments [1, 2] vs [1] -> distance 1 over 2 -> edit 1/2; score (1/3 + 1/2)/2 = 5/12.
    metrics = video_step_metrics(steps(1, 1, 2, 2), steps(1, 1, 1, 1))
    assert metrics.f1 == pytest.approx(1 / 3)
    assert metrics.edit == pytest.approx(0.5)
    assert metrics.score == pytest.approx(5 / 12)


def test_class_only_in_prediction_enters_the_macro_average() -> None:
    # Class 3: tp 3, true 4, pred 3 -> 6/7; class 4 only predicted -> 0; macro 3/7.
    # Segments [3] vs [3, 4, 3] -> distance 2 over 3 -> edit 1/3; score (3/7 + 1/3)/2 = 8/21.
    metrics = video_step_metrics(steps(3, 3, 3, 3), steps(3, 3, 4, 3))
    assert metrics.f1 == pytest.approx(3 / 7)
    assert metrics.edit == pytest.approx(1 / 3)
    assert metrics.score == pytest.approx(8 / 21)


def test_single_segment() -> None:
    right = video_step_metrics(steps(7, 7, 7), steps(7, 7, 7))
    assert (right.f1, right.edit, right.score) == (1.0, 1.0, 1.0)
    # Classes 7 and 8 both score 0; segments [7] vs [8]: one substitution over 1 -> edit 0.
    wrong = video_step_metrics(steps(7, 7, 7), steps(8, 8, 8))
    assert (wrong.f1, wrong.edit, wrong.score) == (0.0, 0.0, 0.0)


def test_nothing_left_after_filtering_is_nan_and_left_out_of_the_mean() -> None:
    metrics = video_step_metrics(steps(-1, 11, 13), steps(1, 2, 3))
    assert math.isnan(metrics.f1) and math.isnan(metrics.edit) and math.isnan(metrics.score)
    assert average_videos([0.5, metrics.score, 1.0]) == pytest.approx(0.75)
    assert math.isnan(average_videos([math.nan]))
    assert math.isnan(average_videos([]))


def test_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(OrstreamError, match="truth has 3 frames but the prediction has 2"):
        video_step_metrics(steps(1, 1, 2), steps(1, 1))
    with pytest.raises(OrstreamError, match="truth has 1 frames but the prediction has 2"):
        video_instrument_metrics(slots((1, -2)), slots((1, -2), (1, -2)))


def test_model_class_indices_are_refused_as_codes() -> None:
    # Class index 0 is not a step code: a caller that forgot to map classes to codes is told.
    with pytest.raises(ValueError, match="not PitVis codes"):
        video_step_metrics(steps(0, 1), steps(1, 1))
    with pytest.raises(ValueError, match="shape"):
        video_instrument_metrics(steps(1, 1), steps(1, 1))


def test_edit_distance_on_segments() -> None:
    assert segments(steps(4, 4, 1, 1, 1, 4, 2)).tolist() == [4, 1, 4, 2]
    assert levenshtein(steps(1, 2, 3, 4), steps(1, 3, 2, 4)) == 2
    assert levenshtein(steps(1, 2, 3), steps(2, 3)) == 1
    assert levenshtein(steps(), steps(5, 6)) == 2
    # Segments [1,2,3,4] vs [1,3,2,4]: two substitutions over 4 -> 1/2.
    assert edit_score(steps(1, 1, 2, 3, 3, 4), steps(1, 3, 3, 2, 4, 4)) == pytest.approx(0.5)


def test_instrument_f1_is_weighted_by_true_frames_and_keeps_every_frame() -> None:
    # Truth {0},{1},{1,2},{} (out of patient, kept); prediction {0},{1},{1},{0}.
    # Class 0: tp 1, fp 1 -> 2/3, weight 1; class 1: 1, weight 2; class 2: 0, weight 1
    # -> (2/3 + 2 + 0) / 4 = 2/3. The official binarizers order truth 0,1,2,... and prediction
    # 0,1,(absent) 2,3,...: the same columns, so the same number.
    metrics = video_instrument_metrics(
        slots((0, -2), (1, -2), (1, 2), (-1, -1)),
        slots((0, -2), (1, -2), (1, -2), (0, -2)),
    )
    assert metrics.f1 == pytest.approx(2 / 3)
    assert metrics.f1_official == pytest.approx(2 / 3)


def test_official_columns_follow_each_side_s_own_classes() -> None:
    # Truth {0},{1},{1,2},{}; prediction {0},{2},{2},{0}.
    # Corrected: class 0 2/3 (w 1), class 1 0 (w 2), class 2 tp 1 fp 1 -> 2/3 (w 1) -> 1/3.
    # Official: truth columns 0,1,2,3..; prediction columns 0,2,1,3..: position 1 compares
    # truth class 1 {f1,f2} with predicted class 2 {f1,f2} -> 1 (w 2), position 2 truth class 2
    # {f2} with predicted class 1 {} -> 0 (w 1) -> (2/3 + 2 + 0) / 4 = 2/3.
    metrics = video_instrument_metrics(
        slots((0, -2), (1, -2), (1, 2), (-1, -1)),
        slots((0, -2), (2, -2), (2, -2), (0, -2)),
    )
    assert metrics.f1 == pytest.approx(1 / 3)
    assert metrics.f1_official == pytest.approx(2 / 3)


def test_official_binarizers_compare_columns_of_different_classes() -> None:
    # Truth classes 0,1,2,2; prediction 1,2,3,3: every frame wrong, so the corrected F1 is 0.
    # The official binarizers order truth 0,1,2,3,.. and prediction 1,2,3,0,..: position j
    # holds the same frames on both sides -> official F1 1.
    metrics = video_instrument_metrics(
        slots((0, -2), (1, -2), (2, -2), (2, -2)),
        slots((1, -2), (2, -2), (3, -2), (3, -2)),
    )
    assert metrics.f1 == 0.0
    assert metrics.f1_official == 1.0


def test_official_equals_corrected_when_both_hold_the_same_classes() -> None:
    # Truth {0},{1},{1,2}; prediction {1},{1},{0,2}.
    # Class 0: tp 0 -> 0, weight 1; class 1: tp 1, true 2, pred 2 -> 1/2, weight 2;
    # class 2: tp 1, true 1, pred 1 -> 1, weight 1 -> (0 + 1 + 1) / 4 = 1/2.
    metrics = video_instrument_metrics(
        slots((0, -2), (1, -2), (1, 2)), slots((1, -2), (1, -2), (0, 2))
    )
    assert metrics.f1 == pytest.approx(0.5)
    assert metrics.f1_official == pytest.approx(0.5)


def test_predicted_out_of_patient_on_an_in_patient_frame_is_a_miss() -> None:
    # Class 1: tp 1, true 2, pred 1 -> 2/3 in both forms (one column each).
    metrics = video_instrument_metrics(slots((1, -2), (1, -2)), slots((1, -2), (-1, -1)))
    assert metrics.f1 == pytest.approx(2 / 3)
    assert metrics.f1_official == pytest.approx(2 / 3)


def test_instruments_all_out_of_patient_average_without_weights() -> None:
    # No true instrument at all: every weight is 0, so the 19 columns count alike. Classes 0
    # and 3 are predicted only (0 each), the 17 others are 0 / 0 -> 1: 17/19 in both forms.
    metrics = video_instrument_metrics(slots((-1, -1), (-1, -1)), slots((3, -2), (0, -2)))
    assert metrics.f1 == pytest.approx(17 / 19)
    assert metrics.f1_official == pytest.approx(17 / 19)
    empty = video_instrument_metrics(slots(), slots())
    assert math.isnan(empty.f1) and math.isnan(empty.f1_official)
