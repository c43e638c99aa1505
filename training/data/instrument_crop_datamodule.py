"""Lightning data for the instrument classifier: tip crops read from crops files.

``orstream export crops`` makes the files (tip crops of what the live segmenter finds in
phantom cases, labelled by their true masks; :mod:`orstream.export.crops.render`): making them
runs the segmenter package as the edge does, which training leaves to the export tier. A
training file usually adds jittered crops of the true masks (``--truth-copies``); a validation
file holds the finds alone, what the classifier will be shown live.

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`); validation crops are shared out by Lightning and
carry their index, so the metrics count every crop once.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.segmentation.instrument_crop import Crops, read_crops
from orstream.training.distributed.batches import ShuffledSamples


class CropDataset(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """(crop, label, index): crops as normalised tensors [3, S, S] (-1..1, as the package's
    card asks); in training flipped across the shaft at random and with each colour channel's
    gain jittered by up to ``colour_jitter``."""

    def __init__(self, crops: Crops, train: bool, colour_jitter: float = 0.2) -> None:
        self.crops = crops
        self.train = train
        self.colour_jitter = colour_jitter

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        image = torch.from_numpy(self.crops.images[index]).permute(2, 0, 1).float() / 255.0
        if self.train:
            if torch.rand(()) < 0.5:
                image = image.flip(1)  # the other side of the instrument: the shaft stays right
            gain = 1.0 + self.colour_jitter * (2 * torch.rand(3, 1, 1) - 1)
            image = (image * gain).clamp(0.0, 1.0)
        return (image - 0.5) / 0.5, torch.tensor(self.crops.labels[index]), torch.tensor(index)


class InstrumentCropDataModule(L.LightningDataModule):
    """Tip crops for training and validation.

    Args:
        train: crops file to train on.
        val: crops file of held-out cases.
        batch_size: crops per step and rank.

    Raises:
        OrstreamError: a file is missing or not a crops file, or both share a case.
    """

    def __init__(
        self,
        train: str = "runs/crops/train.npz",
        val: str = "runs/crops/val.npz",
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_path = Path(train)
        self.val_path = Path(val)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_crops: Crops | None = None
        self.val_crops: Crops | None = None

    def describe(self) -> dict[str, object]:
        """What the crops came from, for the checkpoint and the package's card."""
        train = self.train_crops.source if self.train_crops is not None else {}
        val = self.val_crops.source if self.val_crops is not None else {}
        return {
            "segmenter": train.get("segmenter"),
            "train_seeds": train.get("seeds"),
            "val_seeds": val.get("seeds"),
            "train_crops": 0 if self.train_crops is None else len(self.train_crops),
            "val_crops": 0 if self.val_crops is None else len(self.val_crops),
            "train_source": train,
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_crops is None and stage in (None, "fit"):
            self.train_crops = read_crops(self.train_path)
        if self.val_crops is None:
            self.val_crops = read_crops(self.val_path)
        if self.train_crops is not None:
            shared = set(self.train_crops.seeds.tolist()) & set(self.val_crops.seeds.tolist())
            if shared:
                raise OrstreamError(
                    f"{self.train_path} and {self.val_path} share phantom cases {sorted(shared)}"
                )

    def train_dataloader(self) -> DataLoader[tuple[Tensor, Tensor, Tensor]]:
        assert self.train_crops is not None
        sampler = ShuffledSamples.for_run(
            self.trainer, len(self.train_crops), self.batch_size, drop_last=True
        )
        return DataLoader(
            CropDataset(self.train_crops, train=True),
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader[tuple[Tensor, Tensor, Tensor]]:
        assert self.val_crops is not None
        return DataLoader(
            CropDataset(self.val_crops, train=False), batch_size=256, num_workers=self.num_workers
        )
