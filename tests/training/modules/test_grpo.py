"""GRPO's parts: verifiable rewards, group-normalised advantages, sampled answers laid out for
the policy's log-probabilities, the clipped objective with its KL penalty, and one update."""

import pytest
import torch

from orstream.errors import OrstreamError
from orstream.training.data.vlm_datamodule import IGNORE
from orstream.training.modules.grpo import (
    GroupScores,
    GRPOSettings,
    ReferencePolicy,
    Rollouts,
    answer_rewards,
    group_advantages,
    grpo_loss,
    prompt_lengths,
    sample_rollouts,
    token_log_probs,
)
from orstream.training.registry import create_model
from orstream.vlm.model import VisionLanguageModel
from orstream.vlm.questions.question_items import QuestionItem
from orstream.vlm.text_tokenizer import TextTokenizer

INSTRUMENTS = QuestionItem(
    id="video_01/instruments/0001",
    source="surgical",
    case="video_01",
    start_s=0,
    end_s=8,
    kind="instruments",
    question="Which instruments are visible?",
    reasoning="The last frame shows two tools.",
    answer="suction and drill",
    answer_kind="set",
)


def tiny_model() -> VisionLanguageModel:
    torch.manual_seed(0)
    model = create_model(
        "gmai_vl_small",
        vocab_size=300,
        image_id=3,
        feature_widths={"surgical": 12, "slide": 20},
        width=32,
        layers=2,
        heads=4,
        kv_heads=2,
        mlp_hidden=48,
    )
    assert isinstance(model, VisionLanguageModel)
    return model


def test_rewards_count_a_correct_answer_and_its_format() -> None:
    scores = answer_rewards(
        INSTRUMENTS,
        [
            "<think>Two tools.</think><answer>drill and suction</answer>",  # right, any order
            "<think>One tool.</think><answer>drill</answer>",  # well formed, wrong
            "drill and suction",  # right words, no format: nothing can be read
            "<think>Two tools.</think><answer>Suction, drill.</answer>",
        ],
        format_weight=0.5,
    )
    assert scores.reward.tolist() == [1.5, 0.5, 0.0, 1.5]
    assert scores.correct.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert scores.format_ok.tolist() == [1.0, 1.0, 0.0, 1.0]


def test_advantages_are_normalised_within_each_group() -> None:
    rewards = torch.tensor([[1.5, 0.5, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.5]])
    advantages = group_advantages(rewards)
    torch.testing.assert_close(advantages.mean(dim=1), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(advantages[[0, 2]].std(dim=1), torch.ones(2), atol=1e-3, rtol=0)
    assert advantages[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # equal rewards teach nothing
    assert advantages[0].argsort().tolist()[-1] == 0 and advantages[2, 3] > 0
    # A group's advantages do not depend on the other groups' rewards.
    torch.testing.assert_close(group_advantages(rewards[2:])[0], advantages[2])


def one_prompt_rollouts(answers: list[list[int]], advantages: list[float]) -> Rollouts:
    prompt = [1, 3, 3, 40, 41, 42]
    longest = max(len(prompt) + len(a) for a in answers)
    ids = torch.zeros(len(answers), longest, dtype=torch.long)
    mask = torch.zeros(len(answers), longest - 1, dtype=torch.bool)
    for row, answer in enumerate(answers):
        ids[row, : len(prompt) + len(answer)] = torch.tensor(prompt + answer)
        mask[row, len(prompt) - 1 : len(prompt) - 1 + len(answer)] = True
    zeros = torch.zeros(len(answers))
    return Rollouts(
        ids,
        torch.randn(1, 2, 12).expand(len(answers), -1, -1),
        "surgical",
        mask,
        torch.tensor(advantages),
        GroupScores(zeros, zeros, zeros),
    )


def answer_log_prob(model: VisionLanguageModel, rollouts: Rollouts) -> torch.Tensor:
    with torch.no_grad():
        return (token_log_probs(model, rollouts) * rollouts.answer_mask).sum(dim=1)


def test_a_grpo_step_raises_the_rewarded_answer_and_lowers_the_other() -> None:
    model = tiny_model()
    rewards = torch.tensor([[1.5, 0.0]])
    rollouts = one_prompt_rollouts(
        [[50, 51, 52, 2], [60, 61, 2]], group_advantages(rewards)[0].tolist()
    )
    reference = ReferencePolicy(model).log_probs(rollouts)
    before = answer_log_prob(model, rollouts)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    log_probs = token_log_probs(model, rollouts)
    result = grpo_loss(
        log_probs, log_probs.detach(), reference, rollouts.advantages, rollouts.answer_mask,
        clip_ratio=0.2, kl_coef=0.04,
    )  # fmt: skip
    result.loss.backward()
    optimizer.step()
    after = answer_log_prob(model, rollouts)
    assert after[0] > before[0]
    assert after[1] < before[1]


def test_the_kl_to_the_reference_is_zero_at_start_and_grows_as_the_policy_moves() -> None:
    model = tiny_model()
    rollouts = one_prompt_rollouts([[50, 51, 2], [60, 2]], [1.0, -1.0])
    reference = ReferencePolicy(model)
    log_probs = token_log_probs(model, rollouts)
    args = (rollouts.advantages, rollouts.answer_mask, 0.2, 0.04)
    start = grpo_loss(log_probs, log_probs.detach(), reference.log_probs(rollouts), *args)
    assert float(start.kl) == 0.0 and float(start.clipped) == 0.0
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    moved = token_log_probs(model, rollouts)
    later = grpo_loss(moved, log_probs.detach(), reference.log_probs(rollouts), *args)
    assert float(later.kl) > 0
    # The reference stayed where it was: it is a copy, not the trained model.
    torch.testing.assert_close(reference.log_probs(rollouts), log_probs.detach())


def test_the_clipped_ratio_stops_pushing_an_answer_further() -> None:
    log_probs = torch.zeros(2, 3, requires_grad=True)
    old = torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]])  # ratio e for row 0, 1 for row 1
    mask = torch.ones(2, 3, dtype=torch.bool)
    result = grpo_loss(log_probs, old, log_probs.detach(), torch.tensor([1.0, 1.0]), mask, 0.2, 0)
    result.loss.backward()
    assert log_probs.grad is not None
    assert log_probs.grad[0].abs().sum() == 0  # already 2.7x as likely: clipped
    assert bool((log_probs.grad[1] < 0).all())  # within the range: pushed up
    assert float(result.clipped) == pytest.approx(0.5)


def test_sampled_answers_are_laid_out_after_their_prompts_and_scored() -> None:
    tokenizer = TextTokenizer.train(
        ["<think>Two tools.</think><answer>drill and suction</answer>", "Which instruments?"],
        vocab_size=300,
    )
    model = tiny_model().eval()
    ids = [tokenizer.bos_id, tokenizer.image_id, tokenizer.image_id, *tokenizer.encode("\nWhich")]
    labels = torch.tensor([[IGNORE] * len(ids) + [5, 6]])
    assert prompt_lengths(labels) == [len(ids)]
    prompts = [torch.tensor(ids), torch.tensor(ids[:-1])]
    settings = GRPOSettings(group_size=3, max_new_tokens=5)
    torch.manual_seed(0)
    rollouts = sample_rollouts(
        model, prompts, torch.randn(2, 2, 12), "surgical", [INSTRUMENTS] * 2, tokenizer, settings
    )
    assert rollouts.input_ids.shape[0] == rollouts.features.shape[0] == 6
    torch.testing.assert_close(rollouts.features[3], rollouts.features[5])
    for row in range(6):
        prompt = prompts[row // 3]
        assert rollouts.input_ids[row, : len(prompt)].tolist() == prompt.tolist()
        targets = rollouts.input_ids[row, 1:][rollouts.answer_mask[row]].tolist()
        # The mask selects exactly the answer: the tokens after the prompt, eos included.
        assert 1 <= len(targets) <= 5
        assert rollouts.input_ids[row, len(prompt) : len(prompt) + len(targets)].tolist() == targets
        assert tokenizer.eos_id not in targets[:-1]
    assert rollouts.scores.reward.tolist() == [0.0] * 6  # a random model writes no answer
    assert rollouts.advantages.tolist() == [0.0] * 6


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(OrstreamError, match="group_size"):
        GRPOSettings(group_size=1)
    with pytest.raises(OrstreamError, match="clip_ratio"):
        GRPOSettings(clip_ratio=1.5)
    with pytest.raises(OrstreamError, match="temperature"):
        GRPOSettings(temperature=0)
