"""Each DDP rank draws its own augmentations.

``seed_everything`` gives every process of a run the same seed, so every rank would draw the same
crop, flip, colour jitter, clip start and prompt type for its i-th sample: the global batch would
hold fewer different augmentations than one process gives it. Once the ranks are known, rank r's
global generators (torch, NumPy, ``random``) are reseeded with the run's seed + r. The weights
are built before (and DDP starts every rank from rank 0's), and which samples form each global
batch comes from the run's seed alone (:mod:`orstream.training.distributed.batches`), so only
the augmentation draws depend on the rank.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch

from orstream.training.distributed.batches import seed_of_run


class RankSeeds(L.Callback):
    """Reseeds each rank's global generators with the run's seed + its global rank (runs of one
    process are left as ``seed_everything`` seeded them)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size < 2:
            return
        seed = seed_of_run() + trainer.global_rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
