"""The learning-rate schedule of the segmenter and the tokenizer: linear warm-up, then a cosine
down to 1% of the peak, stepped every optimiser step over the trainer's whole step budget.

Warm-up keeps the first steps of AdamW (whose moment estimates start empty) from throwing a
freshly initialised model off; ending at 1% rather than 0 keeps the last epochs learning.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: float, warmup_steps: int) -> Any:
    """What ``configure_optimizers`` returns for ``optimizer`` under this schedule over
    ``total_steps`` (the trainer's estimated stepping batches); without a finite budget
    (unbounded epochs) the optimizer alone, at a constant rate."""
    if not math.isfinite(total_steps) or total_steps < 1:
        return optimizer
    total = int(total_steps)
    warmup = min(warmup_steps, total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(total - warmup, 1))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
