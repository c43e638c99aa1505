"""Lightning training of the slide patch encoder, thin over the registry-built ``nn.Module``.

Cross-entropy over the phantom's tissue classes of each tile (the majority class of the region
mask under it), plus ``pattern_weight`` times cross-entropy over the growth pattern of tumour
tiles (glandular or solid, their slide's subtype): the classes differ in exactly what a
pathology patch encoder must see (nuclear density and shape, fibres, lumens, fat cells), and the
pattern is what tells the slide subtypes apart, so the features carry what the slide encoder
needs. Validation logs ``val_tile_accuracy`` over every tile of the held-out slides (the
checkpoint monitor), ``val_tumour_recall`` (tumour tiles called tumour; missed tumour is the
failure that matters on a heatmap) and ``val_pattern_accuracy`` over their tumour tiles.

Under DDP each loss is the mean over the global batch's tiles or its tumour tiles
(:func:`~orstream.training.distributed.gather.masked_mean_share`: ranks' shares hold different
numbers of tumour tiles, and a short last batch is shared unevenly), the logged training loss
is the global batch's, and validation gathers every rank's tiles
(:mod:`orstream.training.distributed.metrics`), each held-out tile once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.training.distributed.gather import masked_mean_share
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.slide import PatchEncoder
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
"""(tiles, tissue classes, growth patterns, tile indices): see
:class:`~orstream.training.data.patch_datamodule.TileDataset`."""


class LitPatchEncoder(RecordedModule):
    """Trains a registered patch encoder.

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory (``tile``, the tile side in pixels,
            is linked into the data module).
        pattern_weight: weight of the growth-pattern loss.
        lr: peak learning rate (AdamW, one-cycle).
        weight_decay: AdamW's.
    """

    def __init__(
        self,
        model_name: str = "slide_patch_encoder",
        model_kwargs: dict[str, Any] | None = None,
        pattern_weight: float = 0.5,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, PatchEncoder):
            raise TypeError(f"{model_name!r} is not a patch encoder")
        self.model = model
        self.example_input_array = torch.zeros(2, 3, self.tile, self.tile)
        # (tile indices, [predicted class, class, predicted pattern, pattern] rows)
        self._val: list[tuple[Tensor, Tensor]] = []
        self.val_metrics: dict[str, float] = {}

    @property
    def tile(self) -> int:
        """The model's tile side in pixels (what the data module must cut)."""
        return self.model.tile

    def forward(self, tiles: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features, classes, patterns = self.model(tiles)
        return features, classes, patterns

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        tiles, classes, patterns, _ = batch
        _, class_logits, pattern_logits = self(tiles)
        loss = masked_mean_share(F.cross_entropy(class_logits, classes, reduction="none"))
        # Tiles that are not tumour have no pattern to learn (a batch may have none).
        pattern = F.cross_entropy(pattern_logits, patterns.clamp(min=0), reduction="none")
        loss = loss + self.hparams["pattern_weight"] * masked_mean_share(pattern, patterns >= 0)
        # sync_dist: under DDP the logged loss is that of the global batch, not rank 0's part.
        self.log("train_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        tiles, classes, patterns, indices = batch
        _, class_logits, pattern_logits = self(tiles)
        rows = [class_logits.argmax(1), classes, pattern_logits.argmax(1), patterns]
        self._val.append((indices.cpu(), torch.stack(rows, 1).cpu()))

    def on_validation_epoch_end(self) -> None:
        _, rows = gather_unique(
            torch.cat([i for i, _ in self._val]), torch.cat([r for _, r in self._val]), self.device
        )
        self._val.clear()
        predicted, classes, predicted_pattern, patterns = rows.unbind(1)
        metrics = {"val_tile_accuracy": (predicted == classes).float().mean()}
        tumour = classes == TissueClass.TUMOUR
        if tumour.any():
            metrics["val_tumour_recall"] = (predicted[tumour] == TissueClass.TUMOUR).float().mean()
            right = predicted_pattern[tumour] == patterns[tumour]
            metrics["val_pattern_accuracy"] = right.float().mean()
        for name, value in metrics.items():
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, value, prog_bar=True, sync_dist=True)
        self.val_metrics = {name: float(value) for name, value in metrics.items()}

    def configure_optimizers(self) -> Any:
        return self.adamw_one_cycle(self.parameters())
