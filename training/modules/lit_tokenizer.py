"""Lightning training of the visual tokenizer, thin over the registry-built ``nn.Module``.

The loss of every step (:mod:`orstream.training.models.tokenizer` for the model):

- reconstruction: ``l1_weight * |x - x'| + l2_weight * (x - x')^2`` (means over pixels);
- perceptual (``perceptual_weight``): the distance between the frozen teacher's activations for
  the frame and for its reconstruction
  (:func:`~orstream.training.modules.tokenizer_teacher.perceptual_distance`);
- VQ (``vq_weight``): codebook + 0.25 * commitment;
- visual alignment (``visual_weight``): ``1 - cos`` between the visual head's output and the
  teacher's pooled embedding of the frame;
- text alignment (``text_weight``, stage 2 only): ``1 - cos`` between the text head's output and
  the MiniLM embedding of the frame's narration.

MedITok trains in two stages, and so does this: ``stage: 1`` learns reconstruction with visual
alignment; ``stage: 2`` starts from a stage-1 checkpoint (``init_weights``) and adds the text
alignment, keeping the stage-1 losses so the tokens stay good for reconstruction. The teacher
is the interactive segmenter package's image encoder
(:mod:`orstream.training.modules.tokenizer_teacher`: nothing pretrained can be downloaded, and
it is the best trained image encoder the project has); it is not part of the checkpoint.

Validation runs on the held-out cases' frames and logs ``val_psnr`` (the checkpoint monitor;
dB, mean over frames, on 0..1 pixels), ``val_ssim``, ``val_codebook_usage`` (fraction of all
``groups x codes`` codes picked at least once over the validation frames), ``val_perplexity``
(``exp`` of the entropy of each sub-codebook's code frequencies, mean over sub-codebooks; at
most ``codes``), ``val_visual_cos`` / ``val_text_cos`` (mean cosine of the heads to their
targets) and, in stage 2, ``val_text_r1``: how often, among the distinct narrations of the
held-out frames, the one nearest to a frame's text embedding is its own (a cosine near the
targets' mean scores well without telling narrations apart; this does not).

Under DDP the losses are means over each rank's equal share, which DDP's averaged gradients
turn into the global batch's (the text loss weighs each rank's part by the frames with a
narration it holds: :func:`~orstream.training.distributed.gather.masked_mean_share`); the
logged training values are synced to the global batch's, code restarts see the global batch
(:mod:`orstream.training.models.tokenizer`), and validation gathers every rank's per-frame
results (:mod:`orstream.training.distributed.metrics`), each held-out frame once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from orstream.errors import OrstreamError
from orstream.training.distributed.gather import masked_mean_share
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.tokenizer import VisualTokenizer
from orstream.training.modules.init_weights import load_init_weights
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.modules.tokenizer_teacher import SegmenterTeacher, perceptual_distance
from orstream.training.modules.warmup_cosine import warmup_cosine
from orstream.training.registry import create_model

Batch = tuple[Tensor, Tensor, Tensor, Tensor]


def psnr(reconstruction: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB of each image [B, 3, H, W] in [-1, 1], measured on 0..1 pixels (the
    reconstruction clamped to the range first): [B]."""
    error = ((reconstruction.clamp(-1, 1) - target) / 2).pow(2).flatten(1).mean(dim=1)
    return -10 * torch.log10(error.clamp(min=1e-10))


def ssim(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM (11x11 Gaussian window, sigma 1.5) of images in [-1, 1] on 0..1 pixels."""
    value = structural_similarity_index_measure(
        (reconstruction.clamp(-1, 1) + 1) / 2, (target + 1) / 2, data_range=1.0
    )
    assert isinstance(value, Tensor)
    return value


def code_statistics(counts: Tensor) -> tuple[float, float]:
    """(usage, perplexity) of per-code counts [groups, codes]: the fraction of codes used at
    least once, and the mean over groups of ``exp(entropy)`` of the code frequencies."""
    usage = float((counts > 0).float().mean())
    frequencies = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    entropy = -(frequencies * frequencies.clamp(min=1e-12).log()).sum(dim=1)
    return usage, float(entropy.exp().mean())


def narration_recall(predicted: Tensor, targets: Tensor) -> float:
    """Fraction of rows of ``predicted`` [N, E] whose most similar (cosine) row among the
    distinct rows of ``targets`` [N, E] is their own target."""
    distinct, own = torch.unique(targets, dim=0, return_inverse=True)
    nearest = (F.normalize(predicted, dim=1) @ F.normalize(distinct, dim=1).T).argmax(dim=1)
    return float((nearest == own).float().mean())


def cosine_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Mean ``1 - cos`` of matching rows."""
    return (1 - F.cosine_similarity(predicted, target, dim=1)).mean()


class LitTokenizer(RecordedModule):
    """Trains a registered visual tokenizer in stage 1 or 2 (see the module docstring).

    Args:
        model_name: registry name (``meditok_small``).
        model_kwargs: keyword arguments of the model factory.
        stage: 1 (visual alignment) or 2 (visual and text alignment).
        teacher: the interactive segmenter package whose image encoder gives the perceptual
            features and the stage-1 targets (None: neither loss; both weights must be 0).
        init_weights: a checkpoint of ``orstream train tokenizer`` for the same model whose
            weights training starts from (stage 2 starts from stage 1's; the optimiser, the
            schedule and the step count start afresh).
        lr: AdamW peak learning rate (linear warm-up, then cosine to ``lr * 0.01``).
        weight_decay: AdamW's.
        warmup_steps: optimiser steps of linear warm-up.
        l1_weight: weight of the mean absolute pixel error.
        l2_weight: weight of the mean squared pixel error.
        perceptual_weight: weight of the teacher's feature distance.
        vq_weight: weight of the VQ loss.
        visual_weight: weight of the visual alignment.
        text_weight: weight of the text alignment (stage 2).
    """

    def __init__(
        self,
        model_name: str = "meditok_small",
        model_kwargs: dict[str, Any] | None = None,
        stage: int = 1,
        teacher: str | None = "edge/packages/imis_segmenter",
        init_weights: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        l1_weight: float = 1.0,
        l2_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        vq_weight: float = 1.0,
        visual_weight: float = 0.1,
        text_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if stage not in (1, 2):
            raise OrstreamError(f"stage must be 1 or 2, not {stage}")
        if teacher is None and (perceptual_weight or visual_weight):
            raise OrstreamError("perceptual_weight and visual_weight need a teacher package")
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, VisualTokenizer):
            raise OrstreamError(f"{model_name!r} is not a visual tokenizer")
        if init_weights is not None:
            load_init_weights(model, Path(init_weights))
        self.model = model
        self.example_input_array = torch.zeros(1, 3, *model.input_size)
        # Frozen and not saved: kept out of the module tree (and so out of the state dict).
        self._teacher: list[SegmenterTeacher] = []
        # Per held-out frame: (indices, [psnr, ssim, visual cos, has text, text, target] rows,
        # its codes [groups * h * w]).
        self._val: list[tuple[Tensor, Tensor, Tensor]] = []
        self.val_metrics: dict[str, float] = {}

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the frames the model takes (the data module is linked to it)."""
        return self.model.input_size

    @property
    def with_text(self) -> bool:
        """Whether the frames need their narrations' embeddings (stage 2; linked to the data)."""
        return bool(self.hparams["stage"] == 2)

    def forward(self, images: Tensor) -> Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> their reconstruction through the tokens."""
        return self.model(images).reconstruction

    def teacher(self) -> SegmenterTeacher | None:
        """The frozen teacher on this module's device (loaded on first use), or None."""
        package = self.hparams["teacher"]
        if package is None:
            return None
        if not self._teacher:
            self._teacher.append(SegmenterTeacher.load(Path(package)))
        found = self._teacher[0]
        if found.mean.device != self.device:
            self._teacher[0] = found = found.to(self.device)
        return found

    def setup(self, stage: str) -> None:
        self.teacher()  # a wrong package fails before the first step, not after it

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        images, texts, has_text, _ = batch
        out = self.model(images)
        hp = self.hparams
        parts = {
            "l1": (out.reconstruction - images).abs().mean(),
            "l2": (out.reconstruction - images).pow(2).mean(),
            "vq": out.vq_loss,
        }
        weights = {"l1": hp["l1_weight"], "l2": hp["l2_weight"], "vq": hp["vq_weight"]}
        teacher = self.teacher()
        if teacher is not None:
            with torch.no_grad():
                target_pooled, target_features = teacher(images)
            if hp["perceptual_weight"]:
                _, features = teacher(out.reconstruction)
                parts["perceptual"] = perceptual_distance(features, target_features)
                weights["perceptual"] = hp["perceptual_weight"]
            if hp["visual_weight"]:
                visual = self.model.visual_embedding(out.quantized)
                parts["visual"] = cosine_loss(visual, target_pooled)
                weights["visual"] = hp["visual_weight"]
        if self.with_text and hp["text_weight"]:
            # Over the frames with a narration, in the whole global batch (0 where none has).
            text = self.model.text_embedding(out.quantized)
            distance = 1 - F.cosine_similarity(text, texts, dim=1)
            parts["text"] = masked_mean_share(distance, has_text)
            weights["text"] = hp["text_weight"]
        loss = sum((weights[name] * value for name, value in parts.items()), images.new_zeros(()))
        # sync_dist: under DDP the logged values are the global batch's, not rank 0's part.
        for name, value in parts.items():
            self.log(f"train_{name}", value, sync_dist=True)
        self.log("train_psnr", psnr(out.reconstruction.detach(), images).mean(), sync_dist=True)
        self.log("train_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        images, texts, has_text, indices = batch
        out = self.model(images)
        # SSIM per image, so the mean over the set does not depend on the batch size.
        scores = [
            psnr(out.reconstruction, images),
            torch.stack(
                [ssim(r[None], i[None]) for r, i in zip(out.reconstruction, images, strict=True)]
            ),
        ]
        teacher = self.teacher()
        if teacher is None:
            scores.append(torch.full_like(scores[0], math.nan))
        else:
            pooled, _ = teacher(images)
            visual = self.model.visual_embedding(out.quantized)
            scores.append(F.cosine_similarity(visual, pooled, dim=1))
        text = torch.zeros_like(texts)
        if bool(has_text.any()):
            text = self.model.text_embedding(out.quantized)
        rows = torch.cat([torch.stack(scores, 1), has_text[:, None].float(), text, texts], 1)
        codes = out.indices.flatten(1)
        self._val.append((indices.cpu(), rows.cpu(), codes.cpu()))

    def on_validation_epoch_end(self) -> None:
        keys = torch.cat([k for k, _, _ in self._val])
        _, rows = gather_unique(keys, torch.cat([r for _, r, _ in self._val]), self.device)
        _, codes = gather_unique(keys, torch.cat([c for _, _, c in self._val]), self.device)
        self._val.clear()
        if self.trainer.sanity_checking:
            return  # a few batches of the untrained model: not the checkpoint's metrics
        groups, size = self.model.quantizer.groups, self.model.quantizer.codes
        by_group = codes.view(len(codes), groups, -1).transpose(0, 1).reshape(groups, -1)
        counts = torch.zeros(groups, size, dtype=torch.long).scatter_add_(
            1, by_group, torch.ones_like(by_group)
        )
        usage, perplexity = code_statistics(counts)
        metrics = {
            "val_codebook_usage": usage,
            "val_perplexity": perplexity,
            "val_psnr": float(rows[:, 0].mean()),
            "val_ssim": float(rows[:, 1].mean()),
        }
        if self.hparams["teacher"] is not None:
            metrics["val_visual_cos"] = float(rows[:, 2].mean())
        with_text = rows[:, 3] > 0
        if bool(with_text.any()):
            text, targets = rows[with_text, 4:].chunk(2, dim=1)
            metrics["val_text_cos"] = float(F.cosine_similarity(text, targets, dim=1).mean())
            metrics["val_text_r1"] = narration_recall(text, targets)
        self.val_metrics = metrics
        for name, value in metrics.items():
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(
                name, value, prog_bar=name in ("val_psnr", "val_codebook_usage"), sync_dist=True
            )

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=self.hparams["lr"],
            weight_decay=self.hparams["weight_decay"],
        )
        return warmup_cosine(
            optimizer, float(self.trainer.estimated_stepping_batches), self.hparams["warmup_steps"]
        )
