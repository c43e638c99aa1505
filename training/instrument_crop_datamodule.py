"""Lightning data for the instrument classifier: tip crops of what the live segmenter finds.

The crops come from phantom cases rendered on the fly (one case per seed, video 1, normal
difficulty) with their exact instrument masks. Each sampled frame is encoded by the segmenter
package the classifier will serve beside, and its objects are found exactly as the edge finds
them (:meth:`orstream.edge.models.live_masks.LiveMasks.found`): the classifier learns on the
masks it will be given, errors included. A found mask whose IoU with an instrument's true mask
(at the segmenter's input size) is at least :data:`MATCH_IOU` is that instrument; any other is
class 0, no instrument (tissue, the sella, two instruments in one mask). Training cases also give
jittered crops of each instrument's true mask (``truth_copies`` per instrument), so that rare
instruments are seen more often than the finder happens to find them.

Crops are cached in ``cache_dir`` under a name that holds the segmenter's version and every
setting that changes them, so a second run starts training at once.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.instrument_crop import tip_crop
from orstream.labels import INSTRUMENT_CODES

MATCH_IOU = 0.5
"""IoU with an instrument's true mask from which a found mask is that instrument."""
PHANTOM_VIDEO = 1


@dataclass(frozen=True)
class Crops:
    """RGB uint8 crops [N, S, S, 3], their class indices into ``INSTRUMENT_CODES`` and the
    seed of the case each came from."""

    images: np.ndarray
    labels: np.ndarray
    seeds: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def parse_seeds(text: str) -> list[int]:
    """``"201-230"`` or ``"5,7,9-12"`` -> the seeds (OrstreamError for anything else)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise OrstreamError(f"seeds {text!r}: give numbers and ranges, e.g. 201-230,240") from None
    if not seeds:
        raise OrstreamError(f"seeds {text!r}: no seed given")
    return seeds


def render_crops(
    segmenter: Path,
    seeds: list[int],
    seconds: int,
    every_s: float,
    size: tuple[int, int],
    truth_copies: int,
) -> Crops:
    """The crops of the cases ``seeds`` (module docstring), a frame every ``every_s`` seconds of
    frames ``size`` (height, width)."""
    from tqdm import tqdm

    from orstream.edge.models.live_masks import MIN_AREA, LiveMasks
    from orstream.edge.models.segmenter_model import SegmenterModel
    from orstream.package.loading import load_package
    from orstream.streams.phantom.difficulty import get_difficulty
    from orstream.streams.phantom.renderer import CaseRenderer

    model = SegmenterModel.load(load_package(segmenter))
    finder = LiveMasks(model)
    index_of = {code: index for index, code in enumerate(INSTRUMENT_CODES)}
    height, width = size
    in_height, in_width = model.input_size
    rng = np.random.default_rng(0)
    images, labels, origins = [], [], []
    for seed in tqdm(seeds, desc="rendering crops", unit="case", file=sys.stderr):
        renderer = CaseRenderer(
            seed, PHANTOM_VIDEO, seconds, get_difficulty("normal"), width, height, fps=24.0
        )
        step = max(1, round(every_s * renderer.fps))
        for index in range(int(rng.integers(step)), renderer.frame_count, step):
            frame = np.zeros((height, width, 3), np.uint8)
            truth = np.zeros((height, width), np.uint8)
            renderer.render(index, frame, truth)
            codes, areas = np.unique(truth, return_counts=True)
            instruments = {
                int(code): cv2.resize(
                    (truth == code).astype(np.float32),
                    (in_width, in_height),
                    interpolation=cv2.INTER_AREA,
                )
                >= 0.5
                for code, area in zip(codes, areas, strict=True)
                if code in index_of and code != 0 and area >= MIN_AREA * height * width
            }
            for found in finder.found(frame, model.embed(frame)):
                crop = tip_crop(frame, found.mask)
                if crop is None:
                    continue
                label = 0
                for code, mask in instruments.items():
                    union = np.count_nonzero(found.mask | mask)
                    if union and np.count_nonzero(found.mask & mask) / union >= MATCH_IOU:
                        label = index_of[code]
                images.append(crop)
                labels.append(label)
                origins.append(seed)
            for code in instruments:
                for _ in range(truth_copies):
                    crop = tip_crop(frame, truth == code, rng)
                    if crop is not None:
                        images.append(crop)
                        labels.append(index_of[code])
                        origins.append(seed)
    if not images:
        raise OrstreamError(f"phantom cases {seeds} gave no crops")
    return Crops(np.stack(images), np.asarray(labels, np.int64), np.asarray(origins, np.int64))


def cached_crops(cache_dir: Path | None, key: dict[str, object], make: object) -> Crops:
    """``make()`` once per ``key`` (a digest of it names the cache file)."""
    assert callable(make)
    if cache_dir is None:
        crops: Crops = make()
        return crops
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"instrument-crops-{digest}.npz"
    if path.is_file():
        with np.load(path) as saved:
            return Crops(saved["images"], saved["labels"], saved["seeds"])
    crops = make()
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, images=crops.images, labels=crops.labels, seeds=crops.seeds)
    partial.replace(path)
    return crops


class CropDataset(Dataset[tuple[Tensor, Tensor]]):
    """Crops as normalised tensors [3, S, S] (-1..1, as the package's card asks); in training
    flipped across the shaft at random and with each colour channel's gain jittered by up to
    ``colour_jitter``."""

    def __init__(self, crops: Crops, train: bool, colour_jitter: float = 0.2) -> None:
        self.crops = crops
        self.train = train
        self.colour_jitter = colour_jitter

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = torch.from_numpy(self.crops.images[index]).permute(2, 0, 1).float() / 255.0
        if self.train:
            if torch.rand(()) < 0.5:
                image = image.flip(1)  # the other side of the instrument: the shaft stays right
            gain = 1.0 + self.colour_jitter * (2 * torch.rand(3, 1, 1) - 1)
            image = (image * gain).clamp(0.0, 1.0)
        return (image - 0.5) / 0.5, torch.tensor(self.crops.labels[index])


class InstrumentCropDataModule(L.LightningDataModule):
    """Tip crops of phantom cases for training and validation.

    Args:
        segmenter: the segmenter package whose finds are cropped.
        train_seeds: phantom seeds of the training cases, e.g. ``"201-236,243-290"``.
        val_seeds: phantom seeds of the held-out cases.
        seconds: length of each case.
        every_s: seconds between sampled frames.
        height: frame height rendered (the width is 16:9).
        truth_copies: jittered crops of each true instrument mask per training frame.
        batch_size: crops per step.
        cache_dir: where crops are cached (None: never).
    """

    def __init__(
        self,
        segmenter: str = "edge/packages/imis_segmenter",
        train_seeds: str = "201-236,243-290",
        val_seeds: str = "237-242",
        seconds: int = 120,
        every_s: float = 1.0,
        height: int = 360,
        truth_copies: int = 2,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | None = "runs/cache",
    ) -> None:
        super().__init__()
        self.segmenter = Path(segmenter)
        self.train_seeds = parse_seeds(train_seeds)
        self.val_seeds = parse_seeds(val_seeds)
        if set(self.train_seeds) & set(self.val_seeds):
            raise OrstreamError("train_seeds and val_seeds share cases")
        self.seconds = seconds
        self.every_s = every_s
        self.size = (height, round(height * 16 / 9))
        self.truth_copies = truth_copies
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.train_crops: Crops | None = None
        self.val_crops: Crops | None = None

    def _crops(self, seeds: list[int], truth_copies: int) -> Crops:
        from orstream.package.loading import load_package

        version = load_package(self.segmenter).card.version
        key = {
            "segmenter": version,
            "seeds": seeds,
            "seconds": self.seconds,
            "every_s": self.every_s,
            "size": self.size,
            "truth_copies": truth_copies,
        }
        return cached_crops(
            self.cache_dir,
            key,
            lambda: render_crops(
                self.segmenter, seeds, self.seconds, self.every_s, self.size, truth_copies
            ),
        )

    def describe(self) -> dict[str, object]:
        """What the crops came from, for the checkpoint and the package's card."""
        return {
            "segmenter": str(self.segmenter),
            "train_seeds": self.train_seeds,
            "val_seeds": self.val_seeds,
            "seconds": self.seconds,
            "every_s": self.every_s,
            "size": list(self.size),
            "train_crops": 0 if self.train_crops is None else len(self.train_crops),
            "val_crops": 0 if self.val_crops is None else len(self.val_crops),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_crops is None and stage in (None, "fit"):
            self.train_crops = self._crops(self.train_seeds, self.truth_copies)
        if self.val_crops is None:
            self.val_crops = self._crops(self.val_seeds, 0)

    def train_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        assert self.train_crops is not None
        return DataLoader(
            CropDataset(self.train_crops, train=True),
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        assert self.val_crops is not None
        return DataLoader(
            CropDataset(self.val_crops, train=False),
            batch_size=256,
            num_workers=self.num_workers,
        )
