"""GRPO, the reinforcement learning of the vision-language model's stage 3 (R1-style).

Group Relative Policy Optimization (DeepSeekMath; the RL of DeepSeek-R1 and GMAI-VL-R1) needs
no value model: each question is answered ``group_size`` times by sampling, every answer gets a
verifiable reward (here: correct against the phantom's exact ground truth, and well formed, as
:func:`~orstream.vlm.questions.answer_scoring.score_answer` reads it), and an answer's advantage is
its reward against its own group's, ``(r - mean) / std``. The policy then maximises the clipped
surrogate of PPO with those advantages on every answer token, minus ``kl_coef`` times the
per-token KL estimate ``exp(ref - logp) - (ref - logp) - 1`` (unbiased and never negative) to the
frozen stage-2 model, averaged over each answer's tokens and then over the answers.

A group whose answers all score the same carries no signal (its advantages are zero): only the
KL term then moves the policy. Correctness weighs more than format by default
(``format_weight`` 0.5), so a well-formed wrong answer never earns what a right one does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from orstream.errors import OrstreamError
from orstream.training.data.vlm_datamodule import IGNORE
from orstream.vlm.model import VisionLanguageModel
from orstream.vlm.questions.answer_scoring import score_answer
from orstream.vlm.questions.question_items import QuestionItem
from orstream.vlm.text_tokenizer import TextTokenizer


@dataclass(frozen=True)
class GRPOSettings:
    """Attributes:
    group_size: answers sampled per question (at least 2: advantages compare them).
    temperature: the sampling temperature of the answers (above 0).
    kl_coef: the weight of the KL penalty to the reference model (beta).
    clip_ratio: the surrogate's clip range, ratios in [1 - clip, 1 + clip] (epsilon).
    format_weight: the reward of a well-formed answer, beside 1 for a correct one.
    policy_updates: optimiser steps on each group of sampled answers (mu); after the first,
        the clipped ratio to the sampling policy limits how far they move it.
    max_new_tokens: the longest sampled answer (longer ones are cut and score nothing).
    """

    group_size: int = 8
    temperature: float = 1.0
    kl_coef: float = 0.04
    clip_ratio: float = 0.2
    format_weight: float = 0.5
    policy_updates: int = 1
    max_new_tokens: int = 96

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise OrstreamError(f"group_size must be at least 2, not {self.group_size}")
        if self.temperature <= 0:
            raise OrstreamError(f"temperature must be above 0, not {self.temperature}")
        if self.kl_coef < 0 or self.format_weight < 0:
            raise OrstreamError("kl_coef and format_weight must not be negative")
        if not 0 < self.clip_ratio < 1:
            raise OrstreamError(f"clip_ratio must be in (0, 1), not {self.clip_ratio}")
        if self.policy_updates < 1 or self.max_new_tokens < 1:
            raise OrstreamError("policy_updates and max_new_tokens must be at least 1")


@dataclass(frozen=True)
class GroupScores:
    """Per answer of a group [G]: reward, correct (0/1) and well formed (0/1)."""

    reward: Tensor
    correct: Tensor
    format_ok: Tensor


def answer_rewards(item: QuestionItem, texts: list[str], format_weight: float) -> GroupScores:
    """The verifiable rewards of the answers ``texts`` to ``item``: 1 when correct plus
    ``format_weight`` when well formed."""
    scores = [score_answer(item, text) for text in texts]
    correct = torch.tensor([float(s.correct) for s in scores])
    format_ok = torch.tensor([float(s.format_ok) for s in scores])
    return GroupScores(correct + format_weight * format_ok, correct, format_ok)


def group_advantages(rewards: Tensor, eps: float = 1e-4) -> Tensor:
    """Advantages [Q, G] of rewards [Q, G] (a row per question's group): each reward less its
    group's mean, over its group's standard deviation; zero for a group of equal rewards."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


@dataclass
class Rollouts:
    """Q questions' groups of sampled answers as one right-padded batch of R = Q x G rows.

    Attributes:
        input_ids: [R, T] each row its prompt, then its answer (with ``<eos>`` when it ended).
        features: [R, N, F] each row's question's visual tokens.
        source: the one source of the batch.
        answer_mask: [R, T - 1] the next-token positions that predict an answer token.
        advantages: [R].
        scores: rewards, correct and well formed per row.
    """

    input_ids: Tensor
    features: Tensor
    source: str
    answer_mask: Tensor
    advantages: Tensor
    scores: GroupScores


def prompt_lengths(labels: Tensor) -> list[int]:
    """Each row's prompt length in a training batch: the positions before its first learnt
    label."""
    learnt = labels != IGNORE
    if not bool(learnt.any(dim=1).all()):
        raise ValueError("a batch row has no target after its prompt")
    return learnt.int().argmax(dim=1).tolist()


@torch.no_grad()
def sample_rollouts(
    model: VisionLanguageModel,
    prompts: list[Tensor],
    features: Tensor,
    source: str,
    items: list[QuestionItem],
    tokenizer: TextTokenizer,
    settings: GRPOSettings,
) -> Rollouts:
    """Answer each question (``prompts`` [T_q] ids, ``features`` [Q, N, F]) ``group_size``
    times by sampling through the KV cache, score the answers and rank them in their group."""
    eos, group = tokenizer.eos_id, settings.group_size
    rows: list[Tensor] = []
    answers: list[tuple[int, int]] = []  # (prompt length, answer length incl. eos) per row
    scores: list[GroupScores] = []
    for prompt, visual, item in zip(prompts, features, items, strict=True):
        tokens = model.sample(
            prompt[None],
            visual[None],
            source,
            eos,
            settings.max_new_tokens,
            group,
            settings.temperature,
        )
        texts = []
        for answer in tokens.tolist():
            ended = eos in answer
            text = answer[: answer.index(eos)] if ended else answer
            rows.append(torch.cat([prompt, prompt.new_tensor(text + [eos] * ended)]))
            answers.append((len(prompt), len(text) + int(ended)))
            texts.append(tokenizer.decode(text))
        scores.append(answer_rewards(item, texts, settings.format_weight))
    longest = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), longest), tokenizer.pad_id, dtype=torch.long)
    answer_mask = torch.zeros(len(rows), longest - 1, dtype=torch.bool)
    for index, (row, (start, length)) in enumerate(zip(rows, answers, strict=True)):
        input_ids[index, : len(row)] = row
        answer_mask[index, start - 1 : start - 1 + length] = True
    reward = torch.stack([s.reward for s in scores])
    device = features.device
    return Rollouts(
        input_ids.to(device),
        features.repeat_interleave(group, dim=0),
        source,
        answer_mask.to(device),
        group_advantages(reward).flatten().to(device),
        GroupScores(
            reward.flatten(),
            torch.cat([s.correct for s in scores]),
            torch.cat([s.format_ok for s in scores]),
        ),
    )


def token_log_probs(model: VisionLanguageModel, rollouts: Rollouts) -> Tensor:
    """log pi(token | everything before it) of every next token [R, T - 1] (the answer
    tokens are those of ``rollouts.answer_mask``)."""
    logits = model(rollouts.input_ids, rollouts.features, rollouts.source)[:, :-1].float()
    chosen = logits.gather(-1, rollouts.input_ids[:, 1:, None])[..., 0]
    return chosen - torch.logsumexp(logits, dim=-1)


class ReferencePolicy:
    """The frozen stage-2 model the KL penalty holds the policy to.

    Deliberately not an ``nn.Module`` attribute of the Lightning module: it is then neither
    saved in checkpoints (a stage-3 checkpoint loads as any other), nor given to the optimiser,
    nor wrapped by DDP; each rank copies the same stage-2 weights.
    """

    def __init__(self, model: VisionLanguageModel) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def log_probs(self, rollouts: Rollouts) -> Tensor:
        self.model.to(rollouts.input_ids.device)
        return token_log_probs(self.model, rollouts)


@dataclass(frozen=True)
class GRPOLoss:
    """The objective to minimise, and what it was made of (both averaged like the loss):
    the KL estimate to the reference and the share of answer tokens whose ratio was clipped."""

    loss: Tensor
    kl: Tensor
    clipped: Tensor


def grpo_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    ref_log_probs: Tensor,
    advantages: Tensor,
    answer_mask: Tensor,
    clip_ratio: float,
    kl_coef: float,
) -> GRPOLoss:
    """GRPO's objective, negated (module docstring): token log-probabilities [R, T - 1] under
    the policy being trained, the policy that sampled and the reference; advantages [R]."""
    ratio = torch.exp(log_probs - old_log_probs)
    advantage = advantages[:, None]
    surrogate = torch.minimum(
        ratio * advantage, ratio.clamp(1 - clip_ratio, 1 + clip_ratio) * advantage
    )
    delta = ref_log_probs - log_probs
    kl = torch.exp(delta) - delta - 1
    mask = answer_mask.to(log_probs.dtype)
    tokens = mask.sum(dim=1).clamp(min=1)

    def per_answer_mean(values: Tensor) -> Tensor:
        return ((values * mask).sum(dim=1) / tokens).mean()

    clipped = ((ratio - 1).abs() > clip_ratio).to(log_probs.dtype)
    return GRPOLoss(
        per_answer_mean(kl_coef * kl - surrogate),
        per_answer_mean(kl).detach(),
        per_answer_mean(clipped).detach(),
    )
