"""A Lightning callback that records, per rank, what a DDP run's tests check afterwards.

It runs inside every process of ``orstream train ... trainer.strategy=ddp`` (the tests pass it
with ``--trainer.callbacks+=ddp_recorder.RecordShares`` and put this folder on PYTHONPATH).
"""

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch


class RecordShares(L.Callback):
    """Writes ``<out>/rank<R>.json``: the rank, the world size, the training sample indices the
    rank drew in each epoch, and, when fitting ends, its ``val_metrics``, torch's seed and the
    sum of each of its weights (equal on every rank when DDP kept them in step)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.epochs: list[list[int]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning has called the sampler's set_epoch by now.
        loader: Any = trainer.train_dataloader
        self.epochs.append([int(i) for i in loader.sampler])

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "epochs": self.epochs,
            "val_metrics": getattr(pl_module, "val_metrics", {}),
            "torch_seed": torch.initial_seed(),
            "weight_sums": [float(p.detach().double().sum()) for p in pl_module.parameters()],
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
