"""Lightning training of the vision-language model, thin over the registry-built module.

Both stages minimise next-token cross-entropy over the target text alone (narrations and
captions in stage 1, reasoning and answers in stage 2), with the vision encoders frozen outside
the model (their tokens are precomputed by the data module).

Why the language model trains in stage 1 too: GMAI-VL and LLaVA freeze a pretrained language
model while the projector aligns, but no pretrained weights can be downloaded here, so the
language model starts from random weights. Training it with the projector on the captioning
text teaches it the project's language and, at the same time, to read the visual tokens; a
separate text-only stage 0 would learn the same narrations and captions without the images, so
it is left out. Stage 2 starts from stage 1's weights (``init_weights``) and tunes everything
on the reasoning questions.

Stage 3 is R1-style reinforcement learning on the same training questions: GRPO with verifiable
rewards (:mod:`orstream.training.modules.grpo`), starting from stage 2's weights, which it also
keeps frozen as the KL penalty's reference. Each step samples ``group_size`` answers per question,
scores them against the ground truth and makes ``policy_updates`` optimiser steps (manual
optimisation: the answers are sampled inside the step). AdamW runs at a constant rate there: a
warm-up from zero would spend the short RL budget, and the KL term, not a decaying rate, keeps the
policy near stage 2. Training logs ``train_reward``, ``train_correct``, ``train_format_ok``,
``train_kl`` and ``train_clipped``.

Validation logs ``val_loss`` and ``val_token_accuracy`` (greedy next-token accuracy over the
held-out targets; the checkpoint monitor). With ``val_generate`` above 0 in stages 2 and 3,
that many held-out questions (spread evenly over the list) are answered by greedy generation
through the KV cache and scored exactly
(:func:`~orstream.vlm.questions.answer_scoring.score_answer`): ``val_accuracy``, ``val_format_ok``
and ``val_accuracy_<kind>`` per question type.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor
from torch.nn import functional as F

from orstream.errors import OrstreamError
from orstream.training.data.vlm_datamodule import IGNORE, VLMBatch, VLMDataModule
from orstream.training.distributed.gather import masked_mean_share
from orstream.training.distributed.metrics import gather_unique
from orstream.training.modules.grpo import (
    GRPOSettings,
    ReferencePolicy,
    grpo_loss,
    prompt_lengths,
    sample_rollouts,
    token_log_probs,
)
from orstream.training.modules.init_weights import load_init_weights
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model
from orstream.vlm.model import VisionLanguageModel
from orstream.vlm.questions.answer_scoring import score_answer

GRPO_GRADIENT_CLIP = 1.0
"""Stage 3's gradient norm limit: a group of rare, large advantages must not throw the policy
far in one step."""


class LitVLM(RecordedModule):
    """Trains a registered vision-language model in stage 1, 2 or 3 (module docstring).

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory (``vocab_size`` and
            ``feature_widths`` are linked into the data module).
        stage: 1 (alignment on narrations and captions), 2 (reasoning questions) or 3 (GRPO
            on the reasoning questions).
        init_weights: a checkpoint of ``orstream train vlm`` whose model weights training starts
            from (stage 2 from stage 1's, stage 3 from stage 2's and required there; optimiser
            and schedule start afresh).
        lr: AdamW peak learning rate (one-cycle; stage 3 constant).
        weight_decay: AdamW's.
        val_generate: held-out questions answered by generation at each validation (stages 2
            and 3).
        max_new_tokens: the longest generated answer (validation and stage 3's samples).
        group_size, temperature, kl_coef, clip_ratio, format_weight, policy_updates: stage 3's
            GRPO (:class:`~orstream.training.modules.grpo.GRPOSettings`).
    """

    def __init__(
        self,
        model_name: str = "gmai_vl_small",
        model_kwargs: dict[str, Any] | None = None,
        stage: int = 1,
        init_weights: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        val_generate: int = 0,
        max_new_tokens: int = 96,
        group_size: int = 8,
        temperature: float = 1.0,
        kl_coef: float = 0.04,
        clip_ratio: float = 0.2,
        format_weight: float = 0.5,
        policy_updates: int = 1,
    ) -> None:
        super().__init__()
        if stage not in (1, 2, 3):
            raise OrstreamError(f"stage must be 1, 2 or 3, not {stage}")
        if stage == 3 and init_weights is None:
            raise OrstreamError("stage 3 starts from stage 2: give model.init_weights=CKPT")
        self.save_hyperparameters()
        self.grpo = GRPOSettings(
            group_size,
            temperature,
            kl_coef,
            clip_ratio,
            format_weight,
            policy_updates,
            max_new_tokens,
        )
        # Stage 3 samples its answers inside the step, then makes its own optimiser steps.
        self.automatic_optimization = stage != 3
        self._reference: ReferencePolicy | None = None
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, VisionLanguageModel):
            raise OrstreamError(f"{model_name} is not a vision-language model")
        self.model = model
        ids = torch.full((2, 12), 10, dtype=torch.long)
        ids[:, 1:5] = model.image_id
        width = next(iter(model.feature_widths.values()))
        source = next(iter(model.feature_widths))
        self.example_input_array = (ids, torch.zeros(2, 4, width), source)
        self.val_metrics: dict[str, float] = {}
        self._val_keys: list[Tensor] = []
        self._val_rows: list[Tensor] = []  # per sample: summed loss, right tokens, tokens

    def setup(self, stage: str) -> None:
        # Here rather than in __init__: a checkpoint of this module rebuilt for inference
        # carries its own weights and must not need the earlier stage's file.
        init_weights = self.hparams["init_weights"]
        if stage == "fit" and init_weights is not None:
            load_init_weights(self.model, Path(init_weights))
            if self.stage == 3:
                self._reference = ReferencePolicy(self.model)

    @property
    def stage(self) -> int:
        """The training stage (linked to the data)."""
        return int(self.hparams["stage"])

    @property
    def vocab_size(self) -> int:
        """The model's token ids (linked to the data: the tokenizer may have no more)."""
        return int(self.model.language.vocab_size)

    @property
    def feature_widths(self) -> dict[str, int]:
        """Each vision source's feature width (linked to the data, which checks its encoders)."""
        return dict(self.model.feature_widths)

    def forward(self, input_ids: Tensor, features: Tensor, source: str) -> Tensor:
        logits: Tensor = self.model(input_ids, features, source)
        return logits

    def _token_losses(self, batch: VLMBatch) -> tuple[Tensor, Tensor, Tensor]:
        """(loss of each next token [B, T-1], right greedy predictions, the target tokens'
        mask): only target tokens count."""
        logits = self(batch.input_ids, batch.features, batch.source)[:, :-1]
        labels = batch.labels[:, 1:]
        losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
        counted = labels != IGNORE
        return losses, (logits.argmax(-1) == labels) & counted, counted

    def training_step(self, batch: VLMBatch, batch_index: int) -> Tensor:
        if self.stage == 3:
            return self._grpo_step(batch)
        # The mean over the global batch's target tokens (ranks' shares hold different counts).
        losses, _, counted = self._token_losses(batch)
        loss = masked_mean_share(losses.flatten(), counted.flatten()) + self._idle_projectors(
            batch.source
        )
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch.input_ids), sync_dist=True)
        return loss

    def _grpo_step(self, batch: VLMBatch) -> Tensor:
        """One GRPO step on a batch of training questions (module docstring)."""
        data = getattr(self.trainer, "datamodule", None)
        assert isinstance(data, VLMDataModule) and self._reference is not None
        items = [data.train_samples[i].item for i in batch.index.tolist()]
        questions = [item for item in items if item is not None]
        assert len(questions) == len(items), "stage 3 trains on questions alone"
        lengths = prompt_lengths(batch.labels)
        prompts = [ids[:length] for ids, length in zip(batch.input_ids, lengths, strict=True)]
        self.model.eval()
        rollouts = sample_rollouts(
            self.model, prompts, batch.features, batch.source, questions, data.tokenizer, self.grpo
        )
        self.model.train()
        reference = self._reference.log_probs(rollouts)
        optimizer = self.optimizers()
        assert isinstance(optimizer, LightningOptimizer)
        sampled: Tensor | None = None
        for _ in range(self.grpo.policy_updates):
            log_probs = token_log_probs(self.model, rollouts)
            # The first update's policy is the one that sampled: its ratio is exactly 1.
            sampled = log_probs.detach() if sampled is None else sampled
            result = grpo_loss(
                log_probs,
                sampled,
                reference,
                rollouts.advantages,
                rollouts.answer_mask,
                self.grpo.clip_ratio,
                self.grpo.kl_coef,
            )
            optimizer.zero_grad()
            self.manual_backward(result.loss + self._idle_projectors(batch.source))
            self.clip_gradients(optimizer.optimizer, gradient_clip_val=GRPO_GRADIENT_CLIP)
            optimizer.step()
        scores = rollouts.scores
        logged = {
            "train_loss": result.loss.detach(),
            "train_reward": scores.reward.mean(),
            "train_correct": scores.correct.mean(),
            "train_format_ok": scores.format_ok.mean(),
            "train_kl": result.kl,
            "train_clipped": result.clipped,
        }
        for name, value in logged.items():
            self.log(
                name,
                value.to(self.device),
                prog_bar=name == "train_reward",
                batch_size=len(questions),
                sync_dist=True,
            )
        return result.loss.detach()

    def _idle_projectors(self, source: str) -> Tensor:
        """Zero, through the projectors of the sources a batch does not hold: each step then
        gives every parameter a gradient (DDP's reducer waits for all of them), and AdamW treats
        the idle projectors alike in one process and in many."""
        idle = [
            (weight * 0).sum()
            for name, projector in self.model.projectors.items()
            if name != source
            for weight in projector.parameters()
        ]
        return torch.stack(idle).sum() if idle else torch.zeros(())

    def on_validation_epoch_start(self) -> None:
        self._val_keys, self._val_rows = [], []

    def validation_step(self, batch: VLMBatch, batch_index: int) -> None:
        losses, right, counted = self._token_losses(batch)
        sums = [(losses * counted).sum(dim=1), right.sum(dim=1), counted.sum(dim=1)]
        self._val_keys.append(batch.index)
        self._val_rows.append(torch.stack(sums, dim=1).double())

    def on_validation_epoch_end(self) -> None:
        # Every rank's rows, each held-out sample once (the sampler repeats some to fill
        # batches), so every rank logs what one process validating all the data would.
        keys = torch.cat(self._val_keys) if self._val_keys else torch.zeros(0, dtype=torch.long)
        rows = torch.cat(self._val_rows) if self._val_rows else torch.zeros(0, 3).double()
        _, rows = gather_unique(keys, rows, self.device)
        loss_sum, right, tokens = rows.sum(dim=0).tolist()
        metrics = {
            "val_loss": loss_sum / max(tokens, 1),
            "val_token_accuracy": right / max(tokens, 1),
        }
        if (
            self.stage >= 2
            and self.hparams["val_generate"] > 0
            and not self.trainer.sanity_checking
        ):
            metrics.update(self.answer_accuracy(int(self.hparams["val_generate"])))
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in ("val_token_accuracy", "val_accuracy"))
        self.val_metrics = metrics

    def answer_accuracy(self, count: int) -> dict[str, float]:
        """Greedy answers to ``count`` held-out questions (spread evenly), scored exactly:
        accuracy, the share well formed, and accuracy per question type. Under DDP each rank
        answers every ``world_size``-th question and all ranks score all answers."""
        data = getattr(self.trainer, "datamodule", None)
        assert isinstance(data, VLMDataModule)
        samples = [s for s in data.val_samples if s.item is not None]
        chosen = np.linspace(0, len(samples) - 1, min(count, len(samples))).round().astype(int)
        mine = sorted(set(chosen.tolist()))[self.global_rank :: self.trainer.world_size]
        scores: list[list[float]] = []  # per answer: correct, format_ok
        was_training = self.model.training
        self.model.eval()
        for index in mine:
            sample = samples[index]
            assert sample.item is not None
            ids, features = data.prompt_ids(sample)
            generated = self.model.generate(
                ids.to(self.device),
                features.to(self.device),
                sample.source,
                data.tokenizer.eos_id,
                int(self.hparams["max_new_tokens"]),
            )
            score = score_answer(sample.item, data.tokenizer.decode(generated))
            scores.append([float(score.correct), float(score.format_ok)])
        self.model.train(was_training)
        keys, rows = gather_unique(
            torch.tensor(mine, dtype=torch.long),
            torch.tensor(scores, dtype=torch.float64).reshape(-1, 2),
            self.device,
        )
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for index, (correct, _) in zip(keys.tolist(), rows.tolist(), strict=True):
            item = samples[index].item
            assert item is not None
            by_kind[item.kind].append(bool(correct))
        formats = [bool(format_ok) for _, format_ok in rows.tolist()]
        every = [right for results in by_kind.values() for right in results]
        metrics = {
            "val_accuracy": float(np.mean(every)),
            "val_format_ok": float(np.mean(formats)),
        }
        for kind, results in sorted(by_kind.items()):
            metrics[f"val_accuracy_{kind}"] = float(np.mean(results))
        return metrics

    def checkpoint_extras(self) -> dict[str, Any]:
        """The tokenizer (its ``tokenizer.json`` text) beside the weights: the ids mean nothing
        without it."""
        data = getattr(self.trainer, "datamodule", None)
        if isinstance(data, VLMDataModule):
            return {"tokenizer": data.tokenizer.to_json()}
        return {}

    def configure_optimizers(self) -> Any:
        if self.stage == 3:
            return torch.optim.AdamW(
                self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
            )
        return self.adamw_one_cycle(self.parameters())
