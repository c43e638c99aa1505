"""Lightning data for the interactive segmenter, read from phantom datasets in the PitVis layout.

A dataset root holds ``videos/video_NN.mp4``, ``masks/video_NN/TTTTT.png`` (pixel = instrument
code 1..18) and, optionally, ``anatomy/video_NN/TTTTT.png`` (pixel = anatomy code, 101 = sella).
Mask TTTTT belongs to frame ``round(TTTTT * fps)`` of the video. A dataset without ``anatomy/``
gives instrument targets only; one with it must have an anatomy PNG beside every mask PNG.

A *target* is one class present in one annotated frame with at least ``min_area`` pixels in the
full-resolution mask (and still visible once the mask is resized to the model's input size).
Each annotated frame is decoded once, resized to the model's input size with the same area
interpolation the edge uses (:mod:`orstream.training.data.frame_cache`, cached on disk), and each
target's mask is resized the same way (area average, then >= 0.5): to the input size and to the
mask size (the decoder's logits, 1/4 of the input).

A training sample is one target with a prompt type drawn from ``prompt_weights`` (a bit set of
:data:`PROMPT_POINTS`, :data:`PROMPT_BOX`, :data:`PROMPT_TEXT`), its initial positive click (an
interior pixel of the largest component, from anywhere to the deepest) and its tight box with
jitter. Augmentation (a horizontal flip and colour jitter) happens before the prompts are made, so
box and click always match the flipped mask. Validation samples are unaugmented, with the tight
box and the deepest click (the evaluation protocol's first click), the same on every epoch.

Split: by video. ``val_root`` names a separate held-out dataset (all of ``root`` trains);
otherwise a deterministic ``val_fraction`` of ``root``'s videos is held out.

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`); validation targets are shared out by Lightning,
and each sample carries its ``index`` so the metrics count every target once.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.labels import ANATOMY, INSTRUMENTS, SEGMENTATION_CLASSES
from orstream.pitvis import layout
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.click_simulation import next_click
from orstream.training.data.frame_cache import load_frames
from orstream.training.data.label_masks import read_label_png
from orstream.training.data.pitvis_datamodule import CACHE_FOLDER, phantom_metadata
from orstream.training.distributed.batches import ShuffledSamples

PROMPT_POINTS = 1
PROMPT_BOX = 2
PROMPT_TEXT = 4
PROMPT_BITS = {"points": PROMPT_POINTS, "box": PROMPT_BOX, "text": PROMPT_TEXT}
"""Prompt type names -> bits; a training prompt type is a '+'-joined set, e.g. ``box+text``."""

DEFAULT_PROMPT_WEIGHTS = {
    "points": 0.3,
    "box": 0.3,
    "text": 0.2,
    "box+text": 0.1,
    "points+text": 0.1,
}

MASK_SCALE = 4
"""The decoder's mask logits are 1/4 of the input size."""


def prompt_bits(name: str) -> int:
    """``"box+text"`` -> ``PROMPT_BOX | PROMPT_TEXT`` (OrstreamError for an unknown part)."""
    bits = 0
    for part in name.split("+"):
        if part.strip() not in PROMPT_BITS:
            raise OrstreamError(
                f"unknown prompt type {part.strip()!r} in {name!r}; use {', '.join(PROMPT_BITS)}"
            )
        bits |= PROMPT_BITS[part.strip()]
    return bits


@dataclass(frozen=True)
class Targets:
    """Decoded frames and the targets in them.

    ``frames`` [F, H, W, 3] uint8 RGB at the input size; per target: ``frame`` (row of
    ``frames``), ``class_index`` (into the trained classes), ``code`` (segmentation code),
    ``video`` and ``time`` (s), and ``masks`` [T, ceil(H*W/8)] the input-size masks, bit-packed.
    """

    frames: np.ndarray
    frame: np.ndarray
    class_index: np.ndarray
    code: np.ndarray
    video: np.ndarray
    time: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def mask(self, index: int) -> np.ndarray:
        """Target ``index``'s input-size mask, bool [H, W]."""
        height, width = self.frames.shape[1:3]
        bits = np.unpackbits(self.masks[index], count=height * width)
        return bits.reshape(height, width).astype(bool)

    def subset(self, keep: np.ndarray) -> Targets:
        """The targets at indices ``keep`` (sharing the frames)."""
        return Targets(
            self.frames,
            self.frame[keep],
            self.class_index[keep],
            self.code[keep],
            self.video[keep],
            self.time[keep],
            self.masks[keep],
        )


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A binary mask resized as the frames are (area average), kept where it covers >= 1/2."""
    height, width = size
    covered = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(covered >= 0.5)


def load_targets(
    root: Path,
    videos: Mapping[int, Path],
    class_codes: Sequence[int],
    input_size: tuple[int, int],
    min_area: int,
    cache_dir: Path | None,
) -> Targets:
    """Decode the annotated frames of ``videos`` and collect their targets.

    Raises:
        OrstreamError: unreadable videos or masks, or masks of the wrong size.
    """
    from tqdm import tqdm

    has_anatomy = layout.has_anatomy(root)
    index_of = {code: index for index, code in enumerate(class_codes)}
    frames: list[np.ndarray] = []
    rows: dict[str, list[int]] = {
        "frame": [],
        "class_index": [],
        "code": [],
        "video": [],
        "time": [],
    }
    masks: list[np.ndarray] = []
    progress = tqdm(videos.items(), desc=f"loading {root}", unit="video", file=sys.stderr)
    for video, video_path in progress:
        info = probe_video(video_path)
        shape = (info.height, info.width)
        times = layout.mask_seconds(root, video)
        if not times:
            continue
        indices = np.minimum(
            np.round(np.asarray(times) * info.fps).astype(np.int64), info.frame_count - 1
        )
        decoded = load_frames(video_path, indices, input_size, cache_dir)
        for time, image in zip(times, decoded, strict=True):
            labels = [read_label_png(layout.mask_path(root, video, time), shape)]
            if has_anatomy:
                labels.append(read_label_png(layout.anatomy_path(root, video, time), shape))
            frame_row = len(frames)
            found = 0
            for label in labels:
                codes, counts = np.unique(label, return_counts=True)
                for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
                    if code not in index_of or count < min_area:
                        continue
                    small = resize_mask(label == code, input_size)
                    if not small.any():
                        continue  # too thin to survive the resize: nothing to click on
                    masks.append(np.packbits(small.ravel()))
                    rows["frame"].append(frame_row)
                    rows["class_index"].append(index_of[code])
                    rows["code"].append(code)
                    rows["video"].append(video)
                    rows["time"].append(time)
                    found += 1
            if found:
                frames.append(image)
    height, width = input_size
    return Targets(
        frames=np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8),
        masks=np.stack(masks) if masks else np.zeros((0, (height * width + 7) // 8), np.uint8),
        **{name: np.asarray(values, dtype=np.int64) for name, values in rows.items()},
    )


def tight_box(mask: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) float32: the first and last mask pixel along each axis."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def jitter_box(
    box: np.ndarray, fraction: float, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Each corner coordinate moved by up to ``fraction`` of the box's side, kept in the image
    and ordered (a user's box is never exactly tight)."""
    width, height = box[2] - box[0] + 1, box[3] - box[1] + 1
    noise = rng.uniform(-fraction, fraction, 4) * np.array([width, height, width, height])
    moved = box + noise
    x0, x1 = np.clip(np.sort(moved[[0, 2]]), 0, size[1] - 1)
    y0, y1 = np.clip(np.sort(moved[[1, 3]]), 0, size[0] - 1)
    return np.array([x0, y0, x1, y1], dtype=np.float32)


def jitter_colour(image: Tensor, rng: np.random.Generator, amount: float = 0.2) -> Tensor:
    """Brightness, contrast and saturation of a [3, H, W] 0..1 image scaled by 1 +- amount."""
    image = image * float(rng.uniform(1 - amount, 1 + amount))
    mean = image.mean()
    image = (image - mean) * float(rng.uniform(1 - amount, 1 + amount)) + mean
    grey = image.mean(dim=0, keepdim=True)
    image = (image - grey) * float(rng.uniform(1 - amount, 1 + amount)) + grey
    return image.clamp_(0.0, 1.0)


class TargetSamples(Dataset[dict[str, Tensor]]):
    """Targets as samples: image, masks, class, prompt type, box and first click.

    Args:
        targets: the targets.
        mask_size: (h, w) of the low-resolution mask.
        prompt_weights: prompt type -> probability weight; ``None`` for validation (no prompt
            type drawn, tight box, deepest click, no augmentation).
        box_jitter: largest box corner shift as a fraction of the box's side (training).
        augment: flip and colour jitter (training).
    """

    def __init__(
        self,
        targets: Targets,
        mask_size: tuple[int, int],
        prompt_weights: Mapping[str, float] | None,
        box_jitter: float = 0.1,
        augment: bool = True,
    ) -> None:
        self.targets = targets
        self.mask_size = mask_size
        self.training = prompt_weights is not None
        names = list(prompt_weights or {})
        weights = np.asarray([prompt_weights[name] for name in names] if prompt_weights else [])
        self.prompt_types = np.asarray([prompt_bits(name) for name in names], dtype=np.int64)
        self.prompt_probabilities = weights / weights.sum() if len(weights) else weights
        self.box_jitter = box_jitter
        self.augment = augment

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        targets = self.targets
        if self.training:
            # Seeded from torch so seed_everything (and the worker seeds) fix the draws.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        else:
            rng = np.random.default_rng(index)
        image = torch.from_numpy(targets.frames[targets.frame[index]]).permute(2, 0, 1)
        image = image.float().div_(255.0)
        mask = targets.mask(index)
        size = (mask.shape[0], mask.shape[1])
        prompt = 0
        if self.training:
            prompt = int(rng.choice(self.prompt_types, p=self.prompt_probabilities))
            if self.augment:
                if rng.random() < 0.5:
                    image, mask = image.flip(2), mask[:, ::-1].copy()
                image = jitter_colour(image, rng)
            box = jitter_box(tight_box(mask), self.box_jitter, size, rng)
            click = next_click(np.zeros_like(mask), mask, rng, depth=float(rng.uniform(0.1, 1.0)))
        else:
            box = tight_box(mask)
            click = next_click(np.zeros_like(mask), mask, rng)
        assert click is not None  # the mask is never empty, so an empty prediction errs
        return {
            "image": image,
            "mask": torch.from_numpy(mask.astype(np.float32)),
            "mask_low": torch.from_numpy(resize_mask(mask, self.mask_size).astype(np.float32)),
            "class_index": torch.tensor(int(targets.class_index[index])),
            "code": torch.tensor(int(targets.code[index])),
            "prompt": torch.tensor(prompt),
            "box": torch.from_numpy(box),
            "point": torch.tensor([float(click.x), float(click.y)]),
            "index": torch.tensor(index),
        }


class SegmenterDataModule(L.LightningDataModule):
    """Phantom frames and masks -> prompted segmentation targets.

    Args:
        root: dataset root (PitVis layout with ``masks/``, optionally ``anatomy/``).
        val_root: a separate held-out dataset; when set, every video of ``root`` trains.
        val_fraction: otherwise, the fraction of ``root``'s videos held out (at least one).
        split_seed: seed of the deterministic shuffle behind ``val_fraction``.
        input_size: (height, width) frames are resized to; the model's (linked by the CLI).
        mask_size: (height, width) of the decoder's mask logits (linked by the CLI); by default
            1/4 of ``input_size``.
        classes: class names trained on, in the model's class order (linked by the CLI); by
            default the 18 instruments and the anatomy.
        min_area: fewest pixels of a class in a full-resolution mask for it to be a target.
        prompt_weights: training prompt types (``points``, ``box``, ``text`` or '+'-joined
            combinations) -> relative frequency.
        box_jitter: largest training box corner shift, as a fraction of the box's side.
        batch_size: targets per batch (per rank, in training).
        samples_per_epoch: training targets drawn per epoch over all ranks (without
            replacement, reshuffled when the targets run out); ``None``: every target once.
        val_max_targets: validation targets kept (evenly spread over the sorted held-out
            targets, the same every epoch); ``None``: all.
        num_workers: DataLoader worker processes.
        augment: flip and colour jitter of training samples.
        disk_cache: keep decoded frames in ``<root>/.orstream_cache`` between runs.
    """

    def __init__(
        self,
        root: str,
        val_root: str | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        input_size: tuple[int, int] = (128, 128),
        mask_size: tuple[int, int] | None = None,
        classes: list[str] | None = None,
        min_area: int = 100,
        prompt_weights: dict[str, float] | None = None,
        box_jitter: float = 0.1,
        batch_size: int = 8,
        samples_per_epoch: int | None = None,
        val_max_targets: int | None = 400,
        num_workers: int = 0,
        augment: bool = True,
        disk_cache: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise OrstreamError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        if min_area < 1:
            raise OrstreamError(f"min_area must be at least 1 pixel, got {min_area}")
        self.root = Path(root)
        self.val_root = Path(val_root) if val_root is not None else None
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mask_size = (
            (int(mask_size[0]), int(mask_size[1]))
            if mask_size is not None
            else (self.input_size[0] // MASK_SCALE, self.input_size[1] // MASK_SCALE)
        )
        names = list(classes) if classes is not None else [*INSTRUMENTS.values(), *ANATOMY.values()]
        codes = {name: code for code, name in SEGMENTATION_CLASSES.items()}
        unknown = [name for name in names if name not in codes]
        if unknown:
            raise OrstreamError(f"unknown classes {unknown}; known: {', '.join(codes)}")
        self.classes = names
        self.class_codes = [codes[name] for name in names]
        self.min_area = min_area
        self.prompt_weights = dict(prompt_weights or DEFAULT_PROMPT_WEIGHTS)
        for name, weight in self.prompt_weights.items():
            prompt_bits(name)
            if weight < 0:
                raise OrstreamError(f"prompt weight of {name!r} is negative ({weight})")
        if sum(self.prompt_weights.values()) <= 0:
            raise OrstreamError("prompt_weights must give some prompt type a positive weight")
        self.box_jitter = box_jitter
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.val_max_targets = val_max_targets
        self.num_workers = num_workers
        self.augment = augment
        self.disk_cache = disk_cache
        self.train_targets: Targets | None = None
        self.val_targets: Targets | None = None

    def split(self) -> tuple[dict[int, Path], dict[int, Path]]:
        """(train, val) video number -> video path."""
        found = layout.find_masked_videos(self.root)
        if self.val_root is not None:
            return found, layout.find_masked_videos(self.val_root)
        if len(found) < 2:
            raise OrstreamError(f"{self.root}: a train/val split needs at least two videos")
        order = np.random.default_rng(self.split_seed).permutation(sorted(found))
        count = min(len(found) - 1, max(1, round(self.val_fraction * len(found))))
        held_out = {int(v) for v in order[:count]}
        return (
            {v: path for v, path in found.items() if v not in held_out},
            {v: path for v, path in found.items() if v in held_out},
        )

    def _load(self, videos: dict[int, Path], root: Path) -> Targets:
        targets = load_targets(
            root,
            videos,
            self.class_codes,
            self.input_size,
            self.min_area,
            root / CACHE_FOLDER if self.disk_cache else None,
        )
        if not len(targets):
            raise OrstreamError(
                f"{root}: no targets (no class of {len(self.classes)} covers {self.min_area} "
                "pixels in any mask)"
            )
        return targets

    def setup(self, stage: str) -> None:
        if self.train_targets is not None and self.val_targets is not None:
            return
        train, val = self.split()
        self.train_targets = self._load(train, self.root)
        val_targets = self._load(val, self.val_root or self.root)
        if self.val_max_targets is not None and len(val_targets) > self.val_max_targets:
            keep = np.linspace(0, len(val_targets) - 1, self.val_max_targets).round().astype(int)
            val_targets = val_targets.subset(np.unique(keep))
        self.val_targets = val_targets

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about the data it was trained on."""

        def counts(targets: Targets | None) -> dict[str, int]:
            if targets is None:
                return {}
            codes, number = np.unique(targets.code, return_counts=True)
            return {
                SEGMENTATION_CLASSES[c]: int(n)
                for c, n in zip(codes.tolist(), number.tolist(), strict=True)
            }

        return {
            "root": str(self.root.resolve()),
            "val_root": str(self.val_root.resolve()) if self.val_root is not None else None,
            "train_videos": sorted(set(self.train_targets.video.tolist()))
            if self.train_targets
            else [],
            "val_videos": sorted(set(self.val_targets.video.tolist())) if self.val_targets else [],
            "input_size": list(self.input_size),
            "classes": list(self.classes),
            "min_area": self.min_area,
            "train_targets": counts(self.train_targets),
            "val_targets": counts(self.val_targets),
            "phantom": phantom_metadata(self.root),
            "val_phantom": phantom_metadata(self.val_root) if self.val_root is not None else None,
        }

    def _need(self, targets: Targets | None) -> Targets:
        if targets is None:
            raise OrstreamError("the segmenter data is not loaded (call setup first)")
        return targets

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        samples = TargetSamples(
            self._need(self.train_targets),
            self.mask_size,
            self.prompt_weights,
            self.box_jitter,
            self.augment,
        )
        sampler = ShuffledSamples.for_run(
            self.trainer,
            len(samples),
            self.batch_size,
            num_samples=self.samples_per_epoch,
            drop_last=True,
        )
        return DataLoader(
            samples,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        samples = TargetSamples(self._need(self.val_targets), self.mask_size, None)
        return DataLoader(samples, batch_size=self.batch_size, num_workers=0)
