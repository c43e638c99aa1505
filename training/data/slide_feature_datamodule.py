"""Lightning data for the slide encoder: every tile feature of each phantom slide, encoded
once by the frozen patch encoder.

The patch encoder is the one ``orstream train patch`` wrote (``patch_checkpoint``); its
checkpoint also says how its tiles were cut, and the slides are tiled the same way. Features of
a slide are computed once and cached beside its tiles
(``<root>/cache/<tiling>/features-<checkpoint digest>/<slide>.npz``), so the slide stage
trains on small float arrays without touching a TIFF or a CNN. A batch is several slides,
padded to the longest with a validity mask; in training each slide keeps a random
``tile_keep`` share of its tiles (a bag seen whole only at validation, as MIL training does).

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`), and each process writes a missing cache file
under a name of its own before moving it into place, so ranks that encode the same slide at
once leave one whole file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.training.data.patch_datamodule import normalise_tiles
from orstream.training.data.slide_tiles import (
    SlideLabel,
    Tiling,
    load_slide_tiles,
    read_labels,
    split_slides,
)
from orstream.training.distributed.batches import ShuffledSamples
from orstream.training.registry import create_model

SlideBatch = dict[str, Tensor]
"""``features`` [B, N, D], ``valid`` [B, N], ``tile_tumour`` [B, N], ``subtype`` [B],
``fraction`` [B], ``index`` [B] (the slide's place in the dataset)."""


@dataclass(frozen=True)
class SlideFeatures:
    """One slide's tile features [N, D] and whether each tile is tumour [N]."""

    label: SlideLabel
    features: np.ndarray
    tile_tumour: np.ndarray


class SlideDataset(Dataset[SlideBatch]):
    """One item per slide; in training a random ``tile_keep`` share of its tiles."""

    def __init__(self, slides: list[SlideFeatures], train: bool, tile_keep: float) -> None:
        self.slides = slides
        self.train = train
        self.tile_keep = tile_keep

    def __len__(self) -> int:
        return len(self.slides)

    def __getitem__(self, index: int) -> SlideBatch:
        slide = self.slides[index]
        features = torch.from_numpy(slide.features)
        tumour = torch.from_numpy(slide.tile_tumour).float()
        if self.train and self.tile_keep < 1:
            keep = torch.randperm(len(features))[: max(round(self.tile_keep * len(features)), 1)]
            features, tumour = features[keep], tumour[keep]
        return {
            "features": features,
            "tile_tumour": tumour,
            "subtype": torch.tensor(slide.label.subtype),
            "fraction": torch.tensor(slide.label.tumor_fraction, dtype=torch.float32),
            "index": torch.tensor(index),
        }


def pad_slides(items: list[SlideBatch]) -> SlideBatch:
    """Stack slides of different tile counts, padding with zeros and a validity mask."""
    longest = max(len(item["features"]) for item in items)
    width = items[0]["features"].shape[1]
    batch: SlideBatch = {
        "features": torch.zeros(len(items), longest, width),
        "valid": torch.zeros(len(items), longest, dtype=torch.bool),
        "tile_tumour": torch.zeros(len(items), longest),
    }
    for row, item in enumerate(items):
        count = len(item["features"])
        batch["features"][row, :count] = item["features"]
        batch["valid"][row, :count] = True
        batch["tile_tumour"][row, :count] = item["tile_tumour"]
    for key in ("subtype", "fraction", "index"):
        batch[key] = torch.stack([item[key] for item in items])
    return batch


class SlideFeatureDataModule(L.LightningDataModule):
    """Phantom slides as bags of frozen patch features.

    Args:
        root: a phantom slide dataset (``orstream slide phantom``).
        patch_checkpoint: the patch encoder's checkpoint (``orstream train patch``).
        feature_dim: width of the features (linked from the model; must match the encoder).
        val_every: every n-th slide is held out for validation.
        batch_size: slides per step and rank.
        tile_keep: share of a slide's tiles kept per training step.
    """

    def __init__(
        self,
        root: str = "runs/slide_phantom",
        patch_checkpoint: str | None = None,
        feature_dim: int = 512,
        val_every: int = 4,
        batch_size: int = 3,
        tile_keep: float = 0.7,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.patch_checkpoint = Path(patch_checkpoint) if patch_checkpoint else None
        self.feature_dim = feature_dim
        self.val_every = val_every
        self.batch_size = batch_size
        self.tile_keep = tile_keep
        self.train_set: SlideDataset | None = None
        self.val_set: SlideDataset | None = None
        self.tiling: Tiling | None = None

    def describe(self) -> dict[str, object]:
        """The data, tiling and patch encoder, for the checkpoint and the package's card."""
        tiling = self.tiling
        return {
            "root": str(self.root),
            "patch_checkpoint": str(self.patch_checkpoint),
            "mpp": tiling.mpp if tiling else None,
            "tile": tiling.tile if tiling else None,
            "min_tissue": tiling.min_tissue if tiling else None,
            "val_slides": [s.label.slide for s in self.val_set.slides] if self.val_set else [],
        }

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        if self.patch_checkpoint is None or not self.patch_checkpoint.is_file():
            raise OrstreamError(
                f"data.patch_checkpoint {self.patch_checkpoint}: not found "
                "(train the patch encoder first: orstream train patch)"
            )
        if not self.root.is_dir():
            raise OrstreamError(f"{self.root}: dataset root not found")
        train, held = split_slides(read_labels(self.root), self.val_every)
        encoder, self.tiling, digest = self._load_encoder()
        folder = self.root / "cache" / self.tiling.cache_name / f"features-{digest}"
        slides = {label.slide: self._features(encoder, label, folder) for label in [*train, *held]}
        self.train_set = SlideDataset([slides[s.slide] for s in train], True, self.tile_keep)
        self.val_set = SlideDataset([slides[s.slide] for s in held], False, 1.0)

    def _load_encoder(self) -> tuple[torch.nn.Module, Tiling, str]:
        assert self.patch_checkpoint is not None
        raw = self.patch_checkpoint.read_bytes()
        try:
            saved: dict[str, Any] = torch.load(self.patch_checkpoint, weights_only=False)
            params, data = saved["hyper_parameters"], saved["orstream"]["data"]
            encoder = create_model(params["model_name"], **(params["model_kwargs"] or {}))
            encoder.load_state_dict(
                {k.removeprefix("model."): v for k, v in saved["state_dict"].items()}
            )
            tiling = Tiling(float(data["mpp"]), int(data["tile"]), float(data["min_tissue"]))
        except Exception as error:  # any unreadable or foreign checkpoint
            raise OrstreamError(
                f"{self.patch_checkpoint}: not a patch encoder checkpoint ({error})"
            ) from None
        if getattr(encoder, "feature_dim", None) != self.feature_dim:
            raise OrstreamError(
                f"{self.patch_checkpoint}: its features are "
                f"{getattr(encoder, 'feature_dim', '?')}-d, the slide model reads "
                f"{self.feature_dim}-d (model.model_kwargs.feature_dim)"
            )
        return encoder.eval(), tiling, hashlib.sha256(raw).hexdigest()[:12]

    def _features(self, encoder: torch.nn.Module, label: SlideLabel, folder: Path) -> SlideFeatures:
        assert self.tiling is not None
        cache = folder / f"{label.slide}.npz"
        if not cache.is_file():
            tiles = load_slide_tiles(self.root, label, self.tiling)
            with torch.inference_mode():
                features = [
                    encoder(normalise_tiles(tiles.pixels[start : start + 256]))[0]
                    for start in range(0, len(tiles.pixels), 256)
                ]
            folder.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.partial.npz")
            np.savez(
                partial,
                features=torch.cat(features).numpy()
                if features
                else np.zeros((0, self.feature_dim), np.float32),
                tile_tumour=tiles.classes == TissueClass.TUMOUR,
            )
            partial.replace(cache)
        with np.load(cache) as saved:
            if not len(saved["features"]):
                raise OrstreamError(f"{self.root}: slide {label.slide} holds no tissue tiles")
            return SlideFeatures(label, saved["features"], saved["tile_tumour"])

    def train_dataloader(self) -> DataLoader[SlideBatch]:
        assert self.train_set is not None
        sampler = ShuffledSamples.for_run(self.trainer, len(self.train_set), self.batch_size)
        return DataLoader(
            self.train_set, batch_size=self.batch_size, sampler=sampler, collate_fn=pad_slides
        )

    def val_dataloader(self) -> DataLoader[SlideBatch]:
        assert self.val_set is not None
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=pad_slides)
