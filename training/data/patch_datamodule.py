"""Lightning data for the patch encoder: tiles of phantom slides and their tissue classes.

Tiles come from :mod:`orstream.training.data.slide_tiles` (read through orstream's slide reading
once, then from the on-disk cache). Training draws ``samples_per_epoch`` tiles of the training
slides each epoch, turned by a random multiple of 90 degrees and flipped (a slide has no up);
validation encodes every tile of the held-out slides. A tumour tile's growth pattern is its
slide's subtype.

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`); validation, which Lightning shares out, counts
every held-out tile once by its index.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.training.data.slide_tiles import (
    SlideLabel,
    Tiling,
    load_slide_tiles,
    read_labels,
    split_slides,
)
from orstream.training.distributed.batches import ShuffledSamples

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise_tiles(pixels: np.ndarray) -> Tensor:
    """uint8 RGB tiles [N, S, S, 3] -> float [N, 3, S, S] with ImageNet mean/std, as timm
    backbones (and the exported package's card) expect."""
    tiles = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (tiles - mean) / std


Item = tuple[Tensor, Tensor, Tensor, Tensor]


class TileDataset(Dataset[Item]):
    """(tile [3, S, S] normalised, tissue class, growth pattern: 0 glandular, 1 solid, -1 for
    tiles that are not tumour, index); turned and flipped at random in training."""

    def __init__(
        self, pixels: np.ndarray, classes: np.ndarray, patterns: np.ndarray, train: bool
    ) -> None:
        self.pixels = pixels
        self.classes = torch.from_numpy(classes)
        self.patterns = torch.from_numpy(patterns)
        self.train = train

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> Item:
        tile = normalise_tiles(self.pixels[index : index + 1])[0]
        if self.train:
            tile = torch.rot90(tile, int(torch.randint(4, ())), (1, 2))
            if torch.rand(()) < 0.5:
                tile = tile.flip(2)
        return tile, self.classes[index], self.patterns[index], torch.tensor(index)


class PatchDataModule(L.LightningDataModule):
    """Phantom tiles for the patch encoder.

    Args:
        root: a phantom slide dataset (``orstream slide phantom``).
        tile: tile side in pixels (linked from the model).
        mpp: target µm per pixel of the tiles.
        min_tissue: least tissue share of a kept tile.
        val_every: every n-th slide is held out for validation.
        batch_size: tiles per step and rank.
        samples_per_epoch: training tiles drawn per epoch over all ranks (0: all of them).
        augment: turn and flip training tiles at random.
    """

    def __init__(
        self,
        root: str = "runs/slide_phantom",
        tile: int = 112,
        mpp: float = 1.0,
        min_tissue: float = 0.5,
        val_every: int = 4,
        batch_size: int = 64,
        samples_per_epoch: int = 2048,
        num_workers: int = 0,
        augment: bool = True,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.tiling = Tiling(mpp, tile, min_tissue)
        self.val_every = val_every
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.num_workers = num_workers
        self.augment = augment
        self.train_set: TileDataset | None = None
        self.val_set: TileDataset | None = None
        self.val_slides: list[str] = []

    def describe(self) -> dict[str, object]:
        """The data and tiling, for the checkpoint (the slide stage tiles the same way)."""
        return {
            "root": str(self.root),
            "mpp": self.tiling.mpp,
            "tile": self.tiling.tile,
            "min_tissue": self.tiling.min_tissue,
            "val_slides": list(self.val_slides),
        }

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        if not self.root.is_dir():
            raise OrstreamError(f"{self.root}: dataset root not found")
        train, held = split_slides(read_labels(self.root), self.val_every)
        self.val_slides = [label.slide for label in held]
        self.train_set = self._tiles(train, train=self.augment)
        self.val_set = self._tiles(held, train=False)

    def _tiles(self, labels: list[SlideLabel], train: bool) -> TileDataset:
        slides = [load_slide_tiles(self.root, label, self.tiling) for label in labels]
        pixels = np.concatenate([s.pixels for s in slides])
        if not len(pixels):
            names = ", ".join(label.slide for label in labels)
            raise OrstreamError(f"{self.root}: slides {names} hold no tissue tiles")
        classes = np.concatenate([s.classes for s in slides])
        subtypes = np.concatenate([np.full(len(s.classes), s.label.subtype) for s in slides])
        patterns = np.where(classes == TissueClass.TUMOUR, subtypes - 1, -1)
        return TileDataset(pixels, classes, patterns, train)

    def train_dataloader(self) -> DataLoader[Item]:
        assert self.train_set is not None
        count = self.samples_per_epoch or len(self.train_set)
        sampler = ShuffledSamples.for_run(
            self.trainer,
            len(self.train_set),
            self.batch_size,
            num_samples=min(count, len(self.train_set)),
            drop_last=True,
        )
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader[Item]:
        assert self.val_set is not None
        return DataLoader(self.val_set, batch_size=256, num_workers=self.num_workers)
