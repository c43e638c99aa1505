"""Loss of the interactive segmenter, as in SAM and IMIS-Net: 20 x focal + Dice on the best of
the candidate masks per target, plus the MSE between predicted and actual IoU."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

FOCAL_WEIGHT = 20.0


@dataclass(frozen=True)
class SegmenterLoss:
    """Loss terms averaged over targets; ``best`` [B] is the chosen candidate per target (the
    next interaction round prompts with it)."""

    total: Tensor
    focal: Tensor
    dice: Tensor
    iou_mse: Tensor
    best: Tensor


def sigmoid_focal_loss(
    logits: Tensor, target: Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> Tensor:
    """Per-mask focal loss: logits and target [B, K, H, W] -> [B, K] (mean over pixels)."""
    probability = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = probability * target + (1 - probability) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * cross_entropy).mean(dim=(-2, -1))


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """Per-mask soft Dice loss: logits and target [B, K, H, W] -> [B, K]."""
    probability = torch.sigmoid(logits)
    intersection = (probability * target).sum(dim=(-2, -1))
    total = probability.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1))
    return 1 - (2 * intersection + smooth) / (total + smooth)


def mask_iou(logits: Tensor, target: Tensor) -> Tensor:
    """IoU of the thresholded masks (logit > 0) with the target: [B, K, H, W] -> [B, K]; an
    empty prediction of an empty target counts as 1."""
    predicted = (logits > 0).to(target.dtype)
    intersection = (predicted * target).sum(dim=(-2, -1))
    union = (predicted + target - predicted * target).sum(dim=(-2, -1))
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def segmenter_loss(mask_logits: Tensor, iou_prediction: Tensor, target: Tensor) -> SegmenterLoss:
    """Loss of candidate masks against one target mask each.

    The mask logits are upsampled (bilinear) to the target's size first, so the loss is taken at
    the target's resolution. Only the candidate with the lowest 20 x focal + Dice is trained per
    target (SAM's ambiguity-aware choice); the IoU head is trained on every candidate, since at
    inference it ranks all of them.

    Args:
        mask_logits: [B, K, h, w] candidate mask logits.
        iou_prediction: [B, K] predicted IoU per candidate.
        target: [B, H, W] or [B, 1, H, W] binary truth.
    """
    if target.dim() == 3:
        target = target.unsqueeze(1)
    target = target.to(mask_logits.dtype)
    if mask_logits.shape[-2:] != target.shape[-2:]:
        mask_logits = F.interpolate(
            mask_logits, size=target.shape[-2:], mode="bilinear", align_corners=False
        )
    target = target.expand_as(mask_logits)
    focal = sigmoid_focal_loss(mask_logits, target)
    dice = dice_loss(mask_logits, target)
    best = torch.argmin(FOCAL_WEIGHT * focal + dice, dim=1)
    chosen_focal = focal.gather(1, best[:, None]).mean()
    chosen_dice = dice.gather(1, best[:, None]).mean()
    actual_iou = mask_iou(mask_logits.detach(), target)
    iou_mse = F.mse_loss(iou_prediction, actual_iou)
    total = FOCAL_WEIGHT * chosen_focal + chosen_dice + iou_mse
    return SegmenterLoss(total, chosen_focal, chosen_dice, iou_mse, best)
