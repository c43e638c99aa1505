"""The base of orstream's Lightning modules: checkpoints that carry what export needs.

Every exporter and the model card read ``checkpoint["orstream"]``: the data module's own
description of what trained the model (cases, sizes, windows; the video-text export takes its
clip rate from it) and the last validation metrics. Writing it in one place keeps that record
the same for every model; a module adds entries of its own with :meth:`checkpoint_extras`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import nn


class RecordedModule(L.LightningModule):
    """A LightningModule whose checkpoints record its data and last validation metrics.

    Subclasses fill :attr:`val_metrics` at the end of each validation.
    """

    val_metrics: dict[str, float]

    def checkpoint_extras(self) -> dict[str, Any]:
        """Entries of ``checkpoint["orstream"]`` beside ``data`` and ``metrics`` (none here)."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        describe = getattr(datamodule, "describe", None)
        checkpoint["orstream"] = {
            "data": describe() if callable(describe) else {},
            "metrics": dict(self.val_metrics),
            **self.checkpoint_extras(),
        }

    def adamw_one_cycle(self, parameters: Iterable[nn.Parameter]) -> dict[str, Any]:
        """AdamW over ``parameters`` at the hyperparameters ``lr`` and ``weight_decay``, its
        rate on a one-cycle schedule stepped every batch over the whole run."""
        optimizer = torch.optim.AdamW(
            parameters, lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams["lr"],
            total_steps=int(self.trainer.estimated_stepping_batches),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
