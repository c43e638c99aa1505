"""The video-text training module's pieces: recall at k, and equal texts as positives."""

from __future__ import annotations

import math

import pytest
import torch

from orstream.training.modules.lit_videotext import both_ways, recall_at


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


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_segments_described_by_a_step_are_scored_against_every_step_prompt() -> None:
    from orstream.training.modules.lit_videotext import LitVideoText

    torch.manual_seed(0)
    kwargs = {"input_size": (32, 48), "width": 32, "max_frames": 4}
    plain = LitVideoText(model_kwargs=kwargs, prompt_weight=0.0)
    bank = LitVideoText(model_kwargs=kwargs, prompt_weight=2.0)
    bank.load_state_dict(plain.state_dict())
    prompts = torch.randn(15, 384)
    for module in (plain, bank):
        module.step_prompts = prompts
        module.prompt_rows = torch.tensor([-1, 4, -1, 9])  # text ids 1 and 3 describe steps
        module.eval()  # no dropout: both see the same numbers
    frames = torch.randn(4, 4, 3, 32, 48)
    sentences = torch.randn(4, 384)
    ids = torch.tensor([0, 1, 2, 3])
    is_clip = torch.tensor([True, False, False, False])  # rows 1-3 are segments; 2 a title
    silent = torch.zeros(4, dtype=torch.bool)
    steps = torch.zeros(4, dtype=torch.long)
    batch = (frames, sentences, ids, is_clip, silent, steps, torch.arange(4))
    with torch.no_grad():
        base = plain.training_step(batch, 0)
        total = bank.training_step(batch, 0)
        video = bank.model.embed_video(frames[[1, 3]])
        logits = bank.model.logits(video, bank.model.embed_text(prompts))
        expected = torch.nn.functional.cross_entropy(logits, torch.tensor([4, 9]))
    torch.testing.assert_close(total, base + 2.0 * expected)
