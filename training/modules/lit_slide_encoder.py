"""Lightning training of the slide encoder over frozen patch features, thin over the
registry-built ``nn.Module``.

The loss joins the three slide tasks: cross-entropy over the subtype (``none`` is no tumour),
the absolute error of the tumour fraction (the mean tumour probability of the slide's tiles, so
the heatmap and the fraction are one output), and, with ``tile_weight`` above 0, binary
cross-entropy of each tile's tumour score against the region mask (the phantom has masks; on
slides with labels alone set it to 0 and the tile scores learn from the fraction).

Validation over the held-out slides logs ``val_slide_accuracy`` (subtype), ``val_tumor_accuracy``
(tumour present or not), ``val_fraction_mae``, ``val_tile_accuracy`` (tile tumour scores at 0.5
against the mask) and ``val_score``, their summary and the checkpoint monitor: the mean of slide
accuracy, tile accuracy and 1 - fraction MAE (a handful of held-out slides ties slide accuracy
too often for it to pick a checkpoint alone).

Under DDP each loss is the mean over the global batch's slides or their valid tiles
(:func:`~orstream.training.distributed.gather.masked_mean_share`: ranks' slides hold different
numbers of tiles, and a short last batch is shared unevenly), the logged training loss is the
global batch's, and validation gathers every rank's slides
(:mod:`orstream.training.distributed.metrics`), each held-out slide once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from orstream.training.data.slide_feature_datamodule import SlideBatch
from orstream.training.distributed.gather import masked_mean_share
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.slide import SlideEncoder
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model


class LitSlideEncoder(RecordedModule):
    """Trains a registered slide encoder.

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory (``feature_dim``, the width of the
            patch features, is linked into the data module).
        fraction_weight: weight of the tumour-fraction error.
        tile_weight: weight of the per-tile tumour loss (0: slide labels alone).
        lr: peak learning rate (AdamW, one-cycle).
        weight_decay: AdamW's.
    """

    def __init__(
        self,
        model_name: str = "slide_mil_encoder",
        model_kwargs: dict[str, Any] | None = None,
        fraction_weight: float = 2.0,
        tile_weight: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, SlideEncoder):
            raise TypeError(f"{model_name!r} is not a slide encoder")
        self.model = model
        self.example_input_array = (
            torch.zeros(2, 8, self.feature_dim),
            torch.ones(2, 8, dtype=torch.bool),
        )
        # Per slide: (index, [subtype right, tumour right, |fraction error|, tiles right, tiles]).
        self._val: list[tuple[Tensor, Tensor]] = []
        self.val_metrics: dict[str, float] = {}

    @property
    def feature_dim(self) -> int:
        """The width of the patch features the model reads (what the data must hold)."""
        return self.model.feature_dim

    def forward(self, features: Tensor, valid: Tensor) -> dict[str, Tensor]:
        outputs: dict[str, Tensor] = self.model(features, valid)
        return outputs

    def training_step(self, batch: SlideBatch, batch_index: int) -> Tensor:
        out = self(batch["features"], batch["valid"])
        tiles = F.binary_cross_entropy_with_logits(
            out["tile_logits"], batch["tile_tumour"], reduction="none"
        )
        subtype = F.cross_entropy(out["subtype"], batch["subtype"], reduction="none")
        fraction = (out["fraction"] - batch["fraction"]).abs()
        loss = (
            masked_mean_share(subtype)
            + self.hparams["fraction_weight"] * masked_mean_share(fraction)
            + self.hparams["tile_weight"] * masked_mean_share(tiles, batch["valid"])
        )
        # sync_dist: under DDP the logged loss is that of the global batch, not rank 0's part.
        self.log("train_loss", loss, prog_bar=True, batch_size=len(tiles), sync_dist=True)
        return loss

    def validation_step(self, batch: SlideBatch, batch_index: int) -> None:
        out = self(batch["features"], batch["valid"])
        predicted = out["subtype"].argmax(1)
        truth = batch["subtype"]
        valid = batch["valid"]
        called = out["tile_logits"] > 0
        tiles_right = ((called == (batch["tile_tumour"] > 0.5)) & valid).sum(1)
        rows = [
            (predicted == truth).float(),
            ((predicted > 0) == (truth > 0)).float(),
            (out["fraction"] - batch["fraction"]).abs(),
            tiles_right.float(),
            valid.sum(1).float(),
        ]
        self._val.append((batch["index"].cpu(), torch.stack(rows, 1).cpu()))

    def on_validation_epoch_end(self) -> None:
        _, rows = gather_unique(
            torch.cat([i for i, _ in self._val]), torch.cat([r for _, r in self._val]), self.device
        )
        self._val.clear()
        slides = rows[:, :3].mean(0)
        tiles = rows[:, 3].sum() / rows[:, 4].sum()  # over every tile of the held-out slides
        metrics = {
            "val_slide_accuracy": slides[0],
            "val_tumor_accuracy": slides[1],
            "val_fraction_mae": slides[2],
            "val_tile_accuracy": tiles,
            "val_score": (slides[0] + tiles + 1 - slides[2]) / 3,
        }
        for name, value in metrics.items():
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, value, prog_bar=name != "val_tumor_accuracy", sync_dist=True)
        self.val_metrics = {name: float(value) for name, value in metrics.items()}

    def configure_optimizers(self) -> Any:
        return self.adamw_one_cycle(self.parameters())
