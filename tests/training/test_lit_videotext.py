"""The video-text training module's pieces: recall at k, and equal texts as positives."""

from __future__ import annotations

import math

import pytest
import torch

from orstream.training.lit_videotext import both_ways, recall_at


def test_recall_at_k_counts_rows_whose_own_column_is_among_their_k_best() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.0, 0.7, 0.6]])
    assert recall_at(similarity, 1) == pytest.approx(1 / 3)  # only row 0
    assert recall_at(similarity, 2) == pytest.approx(1.0)


def test_equal_texts_are_not_negatives_of_each_other() -> None:
    logits = torch.zeros(3, 3)  # nothing learnt yet
    distinct = both_ways(logits, torch.tensor([0, 1, 2]))
    shared = both_ways(logits, torch.tensor([5, 5, 2]))  # rows 0 and 1: the same step text
    assert distinct.item() == pytest.approx(math.log(3))
    # rows 0, 1: two positives of three -> -log(2/3); row 2: -log(1/3).
    assert shared.item() == pytest.approx((2 * -math.log(2 / 3) + -math.log(1 / 3)) / 3)
