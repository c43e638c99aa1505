"""Lightning training of the instrument classifier, thin over the registry-built ``nn.Module``.

Cross-entropy with label smoothing over the 19 classes (0: no instrument), AdamW with a one-cycle
learning rate. Validation on held-out phantom cases logs ``val_accuracy`` over every crop (the
checkpoint monitor), ``val_instrument_accuracy`` over the crops of instruments, and
``val_none_accuracy`` over the rest, since a wrong name on the OR display and a mask of tissue
called an instrument are different failures. Under DDP the predictions of all ranks are gathered
first (:mod:`orstream.training.distributed.metrics`), so each crop counts once on every rank.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from orstream.segmentation.instrument_crop import CROP_SIZE
from orstream.training.distributed.metrics import gather_unique
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model


class LitInstrumentClassifier(RecordedModule):
    """Trains a registered instrument classifier.

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory.
        lr: peak learning rate.
        weight_decay: AdamW's.
        label_smoothing: of the cross-entropy.
    """

    def __init__(
        self,
        model_name: str = "instrument_classifier",
        model_kwargs: dict[str, Any] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        label_smoothing: float = 0.05,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = create_model(model_name, **(model_kwargs or {}))
        self.example_input_array = torch.zeros(2, 3, CROP_SIZE, CROP_SIZE)
        self._val: list[tuple[Tensor, Tensor]] = []  # (crop indices, [predicted, label] rows)
        self.val_metrics: dict[str, float] = {}

    def forward(self, crops: Tensor) -> Tensor:
        logits: Tensor = self.model(crops)
        return logits

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_index: int) -> Tensor:
        crops, labels, _ = batch
        loss = F.cross_entropy(self(crops), labels, label_smoothing=self.hparams["label_smoothing"])
        # sync_dist: under DDP the logged loss is that of the global batch, not rank 0's part.
        self.log("train_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_index: int) -> None:
        crops, labels, indices = batch
        self._val.append((indices.cpu(), torch.stack([self(crops).argmax(1), labels], 1).cpu()))

    def on_validation_epoch_end(self) -> None:
        _, rows = gather_unique(
            torch.cat([i for i, _ in self._val]), torch.cat([r for _, r in self._val]), self.device
        )
        self._val.clear()
        predicted, labels = rows[:, 0], rows[:, 1]
        right = (predicted == labels).float()
        instruments = labels > 0
        metrics = {"val_accuracy": right.mean()}
        if instruments.any():
            metrics["val_instrument_accuracy"] = right[instruments].mean()
        if (~instruments).any():
            metrics["val_none_accuracy"] = right[~instruments].mean()
        for name, value in metrics.items():
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, value, prog_bar=name != "val_none_accuracy", sync_dist=True)
        self.val_metrics = {name: float(value) for name, value in metrics.items()}

    def configure_optimizers(self) -> Any:
        return self.adamw_one_cycle(self.parameters())
