"""Lightning training of the IMIS-style interactive segmenter, thin over the registry-built model.

Training follows SAM / IMIS-Net's simulated interaction. Each sample starts with the prompt type
the data module drew for it (clicks, a jittered box, the class's text embedding, or a
combination); the image is encoded once and decoded ``1 + click_rounds`` times. After each round
the candidate with the lowest loss is the "previous best mask": a corrective click is taken in
its largest error region (:func:`orstream.training.data.click_simulation.next_click`) and its
low-resolution logits are fed back as the mask prompt. Clicks and mask prompts are inputs, made
without gradient; the loss (20 x focal + Dice + IoU-MSE,
:func:`orstream.training.modules.segmenter_loss.segmenter_loss`, at the input resolution) is
averaged over the rounds, so the encoder learns from every round.

Text prompts are the frozen MiniLM embeddings of ``prompt_text(name)`` for every class. They are
computed once when fitting (or validation) starts, into a non-persistent buffer: the checkpoint's
state dict holds the segmenter's weights only, and its ``hyper_parameters`` name the classes.

Validation prompts every held-out target three ways -- its tight box, one click at its deepest
interior pixel, its class text -- takes the candidate with the highest predicted IoU (as
deployment does) and scores Dice at the input resolution, averaged over targets:
``val_dice_box``, ``val_dice_points``, ``val_dice_text``, their mean ``val_dice`` (the
checkpoint monitor), and per kind (``val_dice_box_instrument``, ``val_dice_box_anatomy``, ...).
Under DDP the per-target scores of all ranks are gathered first
(:mod:`orstream.training.distributed.metrics`), so each target counts once on every rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from orstream.errors import OrstreamError
from orstream.labels import ANATOMY, INSTRUMENTS, SEGMENTATION_CLASSES
from orstream.training.data.click_simulation import Click, clicks_to_prompt, next_click
from orstream.training.data.segmenter_datamodule import PROMPT_BOX, PROMPT_POINTS, PROMPT_TEXT
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.segmenter import InteractiveSegmenter
from orstream.training.modules.init_weights import load_init_weights
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.modules.segmenter_loss import SegmenterLoss, segmenter_loss
from orstream.training.modules.warmup_cosine import warmup_cosine
from orstream.training.registry import create_model

DEFAULT_CLASSES = [*INSTRUMENTS.values(), *ANATOMY.values()]
"""The 18 PitVis instruments, then the anatomy."""

VAL_PROMPTS = {"box": PROMPT_BOX, "points": PROMPT_POINTS, "text": PROMPT_TEXT}
DETAIL_PREFIX = "image_encoder.detail."
"""Weights a checkpoint of a stride-16 segmenter lacks; they keep their initial values."""


def class_text_embeddings(classes: list[str]) -> Tensor:
    """[C, 384] MiniLM embeddings of ``prompt_text(name)`` per class (unit rows)."""
    from orstream.training.models.text_encoder import TextEncoder, prompt_text

    return TextEncoder.load().encode([prompt_text(name) for name in classes])


def dice_scores(logits: Tensor, target: Tensor) -> Tensor:
    """Dice of (logits > 0) against binary targets, [B, H, W] each -> [B] (empty vs empty
    counts as 1)."""
    predicted = logits > 0
    truth = target > 0.5
    overlap = (predicted & truth).sum(dim=(-2, -1)).float()
    total = (predicted.sum(dim=(-2, -1)) + truth.sum(dim=(-2, -1))).float()
    return torch.where(total > 0, 2 * overlap / total.clamp(min=1), torch.ones_like(total))


@dataclass(frozen=True)
class InteractionRound:
    """One decoding round of a training step: the clicks and mask prompt it was given (per
    sample), its candidate logits and its loss (whose ``best`` feeds the next round)."""

    clicks: list[list[Click]]
    mask_prompt: Tensor | None
    logits: Tensor
    loss: SegmenterLoss


def _kind(code: int) -> str:
    return "anatomy" if code in ANATOMY else "instrument"


class LitSegmenter(RecordedModule):
    """Trains a registered interactive segmenter.

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory.
        classes: class names trained on (names of ``orstream.labels.SEGMENTATION_CLASSES``), in
            text-prompt order; by default the 18 instruments and "sella".
        lr: AdamW peak learning rate (linear warm-up, then cosine to ``lr * 0.01``).
        weight_decay: AdamW weight decay.
        warmup_steps: optimiser steps of linear warm-up.
        click_rounds: corrective-click rounds after the initial prompt in each training step.
        init_weights: a checkpoint of ``orstream train segmenter`` for the same model whose
            weights training starts from (a second phase: the optimiser, the learning-rate
            schedule and the step count start afresh).
    """

    def __init__(
        self,
        model_name: str = "imis_segmenter",
        model_kwargs: dict[str, Any] | None = None,
        classes: list[str] | None = None,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        click_rounds: int = 3,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        names = list(classes) if classes is not None else list(DEFAULT_CLASSES)
        known = set(SEGMENTATION_CLASSES.values())
        unknown = [name for name in names if name not in known]
        if unknown or not names or len(set(names)) != len(names):
            raise OrstreamError(
                f"classes must be distinct names of {', '.join(SEGMENTATION_CLASSES.values())}; "
                f"got {names}"
            )
        if click_rounds < 0:
            raise OrstreamError(f"click_rounds must be 0 or more, got {click_rounds}")
        # The checkpoint names the classes even when the default was used.
        self.hparams["classes"] = names
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, InteractiveSegmenter):
            raise TypeError(f"{model_name!r} is not an interactive segmenter")
        if init_weights is not None:
            # A stride-16 checkpoint warm-starts a stride-8 model: only the detail path is new,
            # and it starts at zero (see ImageEncoder).
            load_init_weights(
                model, Path(init_weights), left_new=lambda key: key.startswith(DETAIL_PREFIX)
            )
        self.model = model
        self.mean: Tensor
        self.std: Tensor
        self.class_text: Tensor
        self.register_buffer("mean", torch.tensor(model.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(model.std).view(3, 1, 1), persistent=False)
        self.register_buffer(
            "class_text", torch.zeros(len(names), model.text_dim), persistent=False
        )
        self._text_ready = False
        height, width = model.input_size
        self.example_input_array = (
            torch.zeros(1, 3, height, width),
            torch.tensor([[[width / 2, height / 2]]]),
            torch.ones(1, 1, dtype=torch.long),
            torch.tensor([[width / 4, height / 4, 3 * width / 4, 3 * height / 4]]),
        )
        self.val_metrics: dict[str, float] = {}
        # Per validation batch: target indices, and rows of (class code, Dice per VAL_PROMPTS).
        self._val_keys: list[Tensor] = []
        self._val_rows: list[Tensor] = []

    @property
    def input_size(self) -> tuple[int, int]:
        return self.model.input_size

    @property
    def mask_size(self) -> tuple[int, int]:
        return self.model.mask_size

    @property
    def classes(self) -> list[str]:
        return list(self.hparams["classes"])

    def setup(self, stage: str) -> None:
        if not self._text_ready:
            self.class_text.copy_(class_text_embeddings(self.classes))
            self._text_ready = True

    def forward(
        self, images: Tensor, points: Tensor, point_labels: Tensor, boxes: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Normalised images and click + box prompts -> (mask logits, IoU)."""
        return self.model(images, points, point_labels, boxes)

    def normalise(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] in 0..1 -> the model's normalised input."""
        return (images - self.mean) / self.std

    def _decode(
        self,
        embeddings: Tensor,
        batch: dict[str, Tensor],
        prompt: Tensor,
        clicks: list[list[Click]],
        slots: int,
        mask_prompt: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        prompts = [clicks_to_prompt(sample, slots) for sample in clicks]
        points = torch.from_numpy(np.stack([p for p, _ in prompts])).to(embeddings.device)
        labels = torch.from_numpy(np.stack([lab for _, lab in prompts])).to(embeddings.device)
        batch_size = embeddings.shape[0]
        return self.model.decode(
            embeddings,
            points,
            labels,
            boxes=batch["box"],
            mask_prompt=mask_prompt,
            text_embedding=self.class_text[batch["class_index"]],
            has_box=(prompt & PROMPT_BOX) > 0,
            has_mask=embeddings.new_full((batch_size,), float(mask_prompt is not None)),
            has_text=(prompt & PROMPT_TEXT) > 0,
        )

    def _corrective_clicks(
        self,
        best_logits: Tensor,
        target: Tensor,
        clicks: list[list[Click]],
        rng: np.random.Generator,
    ) -> None:
        """Adds each sample's next click, from its error region at the input resolution."""
        upsampled = F.interpolate(
            best_logits, size=target.shape[-2:], mode="bilinear", align_corners=False
        )
        predicted = (upsampled[:, 0] > 0).cpu().numpy()
        truth = (target > 0.5).cpu().numpy()
        for index, sample in enumerate(clicks):
            click = next_click(predicted[index], truth[index], rng)
            if click is not None:
                sample.append(click)

    def interaction_rounds(
        self, batch: dict[str, Tensor], embeddings: Tensor, rng: np.random.Generator
    ) -> list[InteractionRound]:
        """The initial prompt, then ``click_rounds`` corrective rounds, each prompted with the
        clicks so far and the previous round's best low-resolution logits (no gradient)."""
        target = batch["mask"]
        prompt = batch["prompt"]
        rounds = self.hparams["click_rounds"]
        points = batch["point"].cpu().numpy()
        clicks = [
            [Click(int(points[i, 0]), int(points[i, 1]), True)] if bits & PROMPT_POINTS else []
            for i, bits in enumerate(prompt.tolist())
        ]
        slots = 1 + rounds
        mask_prompt: Tensor | None = None
        results: list[InteractionRound] = []
        for round_index in range(1 + rounds):
            logits, iou = self._decode(embeddings, batch, prompt, clicks, slots, mask_prompt)
            loss = segmenter_loss(logits, iou, target)
            results.append(
                InteractionRound([list(sample) for sample in clicks], mask_prompt, logits, loss)
            )
            if round_index == rounds:
                break
            with torch.no_grad():
                mask_prompt = logits.gather(
                    1, loss.best[:, None, None, None].expand(-1, 1, *logits.shape[-2:])
                ).detach()
                self._corrective_clicks(mask_prompt, target, clicks, rng)
        return results

    def training_step(self, batch: dict[str, Tensor], batch_index: int) -> Tensor:
        embeddings = self.model.encode_image(self.normalise(batch["image"]))
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        rounds = self.interaction_rounds(batch, embeddings, rng)
        terms = {
            name: torch.stack([getattr(r.loss, name) for r in rounds]).mean()
            for name in ("total", "focal", "dice", "iou_mse")
        }
        size = batch["mask"].shape[0]
        # sync_dist: under DDP the logged losses are those of the global batch, not rank 0's part.
        self.log(
            "train_loss",
            terms["total"],
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=True,
        )
        for name, term in (("focal", "focal"), ("dice_loss", "dice"), ("iou_mse", "iou_mse")):
            self.log(f"train_{name}", terms[term], on_epoch=True, batch_size=size, sync_dist=True)
        return terms["total"]

    def validation_step(self, batch: dict[str, Tensor], batch_index: int) -> None:
        target = batch["mask"]
        embeddings = self.model.encode_image(self.normalise(batch["image"]))
        points = batch["point"].cpu().numpy()
        clicks = [[Click(int(x), int(y), True)] for x, y in points]
        columns = [batch["code"].cpu().double()]
        for name, bits in VAL_PROMPTS.items():
            prompt = torch.full_like(batch["prompt"], bits)
            logits, iou = self._decode(embeddings, batch, prompt, clicks, 1, None)
            if name == "box":
                loss = segmenter_loss(logits, iou, target)
                self.log(
                    "val_loss",
                    loss.total,
                    on_epoch=True,
                    batch_size=target.shape[0],
                    sync_dist=True,
                )
            chosen = logits.gather(
                1, iou.argmax(dim=1)[:, None, None, None].expand(-1, 1, *logits.shape[-2:])
            )
            upsampled = F.interpolate(
                chosen, size=target.shape[-2:], mode="bilinear", align_corners=False
            )
            columns.append(dice_scores(upsampled[:, 0], target).cpu().double())
        self._val_keys.append(batch["index"].cpu())
        self._val_rows.append(torch.stack(columns, dim=1))

    def on_validation_epoch_end(self) -> None:
        keys, rows = self._val_keys, self._val_rows
        self._val_keys, self._val_rows = [], []
        if self.trainer.sanity_checking:
            return  # a few batches of the untrained model: not the checkpoint's metrics
        width = 1 + len(VAL_PROMPTS)
        _, table = gather_unique(
            torch.cat(keys) if keys else torch.zeros(0, dtype=torch.int64),
            torch.cat(rows) if rows else torch.zeros(0, width, dtype=torch.float64),
            self.device,
        )
        if not len(table):
            return
        kinds = np.array([_kind(int(code)) for code in table[:, 0].tolist()])
        dice = {name: table[:, 1 + column] for column, name in enumerate(VAL_PROMPTS)}
        metrics = {f"val_dice_{name}": float(scores.mean()) for name, scores in dice.items()}
        metrics["val_dice"] = float(np.mean([metrics[f"val_dice_{name}"] for name in dice]))
        for kind in ("instrument", "anatomy"):
            chosen = torch.from_numpy(kinds == kind)
            if chosen.any():
                for name, scores in dice.items():
                    metrics[f"val_dice_{name}_{kind}"] = float(scores[chosen].mean())
        self.val_metrics = metrics
        for name, value in metrics.items():
            logged = -1.0 if math.isnan(value) else value
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, logged, prog_bar=name in ("val_dice", "val_dice_box"), sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
        return warmup_cosine(
            optimizer, float(self.trainer.estimated_stepping_batches), self.hparams["warmup_steps"]
        )
