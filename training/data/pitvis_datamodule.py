"""Lightning data for the workflow recognizer, read from the PitVis layout.

A dataset root holds ``videos/video_NN.mp4`` and ``annotations/annotations_NN.csv`` (one row per
second). Samples are taken at ``sample_fps`` (1 Hz by default, the annotation rate): sample time
s shows frame ``round(s * fps)`` and carries the labels of the annotation row of second
``floor(s)``. Each video is decoded once into a resized uint8 cache
(:mod:`orstream.training.data.frame_cache`), then training draws clips from memory.

Split: by video, never by frame. ``val_root`` names a separate held-out dataset (all of ``root``
trains); otherwise ``val_videos`` lists the held-out video numbers, or a deterministic
``val_fraction`` of the videos (shuffled with ``split_seed``) is held out.

Training clips: ``clip_length`` samples (``None``: whole videos). The model's output at a clip
position is supervised only when its whole history lies in the clip -- position
``j >= receptive_field - 1``, or any position of a clip that starts at the video start, where the
model's all-zero initial state is the true history. Clip starts are drawn uniformly from
``-(receptive_field - 1) .. N - clip_length`` and clamped to 0, so the video start is drawn in
proportion to the outputs only it can teach. Validation serves whole videos.

Speed augmentation: phantom and real steps last in proportion to the case, so a model trained
on cases of one length learns how long steps last and fails on shorter or longer cases. With
``speeds``, each training clip is cut from its video's timeline resampled at one of the speeds
(2.0 keeps every second sample, as a case half as long; 0.5 shows each sample twice, as a case
twice as long), drawn per epoch by the sampler, which batches the resampled lengths.

Batches pad clips to the longest of the batch. With ``group_by_length`` (for whole videos of
mixed lengths) each batch takes clips of similar length -- the lengths sorted with random
jitter, cut into batches, the batches shuffled -- so little compute goes into padding and few
black padding frames reach the encoder's batch-norm statistics. Under DDP every rank takes its
share of the same global batches (:mod:`orstream.training.distributed.batches`); validation
videos are shared out by Lightning.

Labels per sample: the step class (``orstream.labels.step_code_to_class``), the instrument
multi-hot over 19 classes (0 = none visible), and whether the instruments are known: out of
patient frames (instrument code -1) have no instrument truth, so they do not count in the
instrument loss, as the PitVis instrument metric leaves them out too.
:meth:`PitVisDataModule.instrument_frequencies` gives the training set's per-class positive
rate over those known frames (the training module weights the rare instruments' BCE with it).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.labels import NUM_INSTRUMENT_CLASSES, step_code_to_class
from orstream.pitvis.csv_files import Annotations, read_annotations
from orstream.pitvis.layout import PHANTOM_METADATA_FILE, find_annotated_videos
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.frame_cache import load_frames
from orstream.training.distributed.batches import (
    GlobalBatchSampler,
    ShuffledSamples,
    SimilarLengthSamples,
)

CACHE_FOLDER = ".orstream_cache"
"""Folder under a dataset root holding decoded-frame caches."""


@dataclass(frozen=True)
class PitVisVideo:
    """One decoded video with per-sample labels (N samples at the data's sample rate)."""

    video: int
    frames: np.ndarray  # uint8 [N, H, W, 3] RGB
    step_class: np.ndarray  # int64 [N]
    instrument_hot: np.ndarray  # float32 [N, 19]
    instrument_known: np.ndarray  # bool [N]
    step_code: np.ndarray  # int64 [N] PitVis codes, for the metrics
    instrument_code: np.ndarray  # int64 [N, 2] PitVis slot codes, for the metrics

    def __len__(self) -> int:
        return len(self.step_class)


def phantom_metadata(root: Path) -> dict[str, Any] | None:
    """The generator settings (seed, difficulty, ...) of a phantom dataset; None for others."""
    path = root / PHANTOM_METADATA_FILE
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OrstreamError(f"{path}: unreadable phantom metadata ({error})") from None
    return metadata if isinstance(metadata, dict) else None


def sample_labels(annotations: Annotations, sample_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (s) over the annotated span and, per sample, its annotation row."""
    span = int(annotations.time[-1]) + 1
    times = np.arange(math.floor(span * sample_fps)) / sample_fps
    # The row of second floor(s); a gap in the annotations keeps the previous row's labels.
    rows = np.searchsorted(annotations.time, np.floor(times), side="right") - 1
    keep = rows >= 0
    return times[keep], rows[keep]


def load_video(
    video_path: Path,
    annotations_path: Path,
    size: tuple[int, int],
    sample_fps: float,
    cache_dir: Path | None,
    length_tolerance_s: float,
) -> PitVisVideo:
    """Decode and label one video (OrstreamError on unreadable or mismatched input)."""
    annotations = read_annotations(annotations_path)
    info = probe_video(video_path)
    span = float(annotations.time[-1]) + 1.0
    if abs(info.duration_s - span) > length_tolerance_s:
        raise OrstreamError(
            f"{video_path}: video lasts {info.duration_s:.1f} s but {annotations_path.name} "
            f"annotates {span:.0f} s"
        )
    times, rows = sample_labels(annotations, sample_fps)
    indices = np.minimum(np.round(times * info.fps).astype(np.int64), info.frame_count - 1)
    frames = load_frames(video_path, indices, size, cache_dir)
    step_code = annotations.step[rows]
    instrument_code = annotations.instruments[rows]
    hot = np.zeros((len(rows), NUM_INSTRUMENT_CLASSES), dtype=np.float32)
    for slot in range(instrument_code.shape[1]):
        codes = instrument_code[:, slot]
        present = codes >= 0
        hot[np.flatnonzero(present), codes[present]] = 1.0
    return PitVisVideo(
        video=annotations.video,
        frames=frames,
        step_class=np.array([step_code_to_class(int(c)) for c in step_code], dtype=np.int64),
        instrument_hot=hot,
        instrument_known=np.asarray(hot.any(axis=1)),
        step_code=step_code,
        instrument_code=instrument_code,
    )


def to_float(frames: np.ndarray) -> Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, H, W] in 0..1."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)


def augment_clip(clip: Tensor, generator: torch.Generator) -> Tensor:
    """Light augmentation, the same for every frame of the clip (a camera does not change per
    frame): a crop of 85-100 % of each side resized back, a horizontal flip, and jitter of
    brightness, contrast and saturation by up to 20 %."""
    _, _, height, width = clip.shape

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    crop_h, crop_w = round(height * uniform(0.85, 1.0)), round(width * uniform(0.85, 1.0))
    top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
    left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
    clip = clip[:, :, top : top + crop_h, left : left + crop_w]
    clip = F.interpolate(clip, size=(height, width), mode="bilinear", align_corners=False)
    if float(torch.rand((), generator=generator)) < 0.5:
        clip = clip.flip(3)
    clip = clip * uniform(0.8, 1.2)
    mean = clip.mean(dim=(1, 2, 3), keepdim=True)
    clip = (clip - mean) * uniform(0.8, 1.2) + mean
    grey = clip.mean(dim=1, keepdim=True)
    clip = (clip - grey) * uniform(0.8, 1.2) + grey
    return clip.clamp_(0.0, 1.0)


def resampled_timeline(samples: int, speed: float) -> np.ndarray:
    """Sample indices of a ``samples``-long timeline played at ``speed``: ``round(samples /
    speed)`` of them, index ``floor(i * speed)`` at position i."""
    count = max(round(samples / speed), 1)
    return np.minimum(np.floor(np.arange(count) * speed).astype(np.int64), samples - 1)


class TrainClips(Dataset[dict[str, Tensor]]):
    """Random clips with loss masks that keep training consistent with streaming inference.

    Index ``clip + clips * k`` (``clips`` = videos x clips per video) is the clip at
    ``speeds[k]``: the samplers' variants.
    """

    def __init__(
        self,
        videos: list[PitVisVideo],
        clip_length: int | None,
        receptive_field: int,
        clips_per_video: int,
        augment: bool,
        speeds: tuple[float, ...] = (1.0,),
    ) -> None:
        self.videos = videos
        self.clip_length = clip_length
        self.receptive_field = receptive_field
        self.clips_per_video = clips_per_video
        self.augment = augment
        self.speeds = speeds
        self.clips = len(videos) * clips_per_video

    def __len__(self) -> int:
        return self.clips * len(self.speeds)

    def _clip_length(self, samples: int) -> int:
        """Samples in a clip of a (resampled) timeline of ``samples``."""
        return samples if self.clip_length is None else min(self.clip_length, samples)

    def lengths(self) -> list[list[int]]:
        """Samples in each clip at each speed: a row per clip."""
        return [
            [
                self._clip_length(
                    len(resampled_timeline(len(self.videos[i % len(self.videos)]), speed))
                )
                for speed in self.speeds
            ]
            for i in range(self.clips)
        ]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        video = self.videos[index % self.clips % len(self.videos)]
        timeline = resampled_timeline(len(video), self.speeds[index // self.clips])
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        length = self._clip_length(len(timeline))
        lowest = -(self.receptive_field - 1)
        start = max(
            0, int(torch.randint(lowest, len(timeline) - length + 1, (), generator=generator))
        )
        window = timeline[start : start + length]
        clip = to_float(video.frames[window])
        if self.augment:
            clip = augment_clip(clip, generator)
        complete = torch.ones(length, dtype=torch.bool)
        if start > 0:
            complete[: self.receptive_field - 1] = False
        known = torch.from_numpy(video.instrument_known[window])
        return {
            "frames": clip,
            "step": torch.from_numpy(video.step_class[window]),
            "instruments": torch.from_numpy(video.instrument_hot[window]),
            "step_mask": complete,
            "instrument_mask": complete & known,
        }


class ValVideos(Dataset[dict[str, Any]]):
    """Whole held-out videos, unaugmented, with their PitVis codes for the metrics."""

    def __init__(self, videos: list[PitVisVideo]) -> None:
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video = self.videos[index]
        known = torch.from_numpy(video.instrument_known)
        return {
            "frames": to_float(video.frames),
            "step": torch.from_numpy(video.step_class),
            "instruments": torch.from_numpy(video.instrument_hot),
            "step_mask": torch.ones(len(video), dtype=torch.bool),
            "instrument_mask": known,
            "video": video.video,
            "step_code": torch.from_numpy(video.step_code),
            "instrument_code": torch.from_numpy(video.instrument_code),
        }


def pad_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples, padding shorter ones at the end (masked out of the loss; causal outputs
    before the padding do not see it)."""
    longest = max(len(item["step"]) for item in items)
    batch: dict[str, Any] = {}
    for key, value in items[0].items():
        if not isinstance(value, Tensor):
            batch[key] = [item[key] for item in items]
            continue
        padded = []
        for item in items:
            tensor = item[key]
            extra = longest - tensor.shape[0]
            if extra:
                fill = torch.zeros((extra, *tensor.shape[1:]), dtype=tensor.dtype)
                tensor = torch.cat([tensor, fill])
            padded.append(tensor)
        batch[key] = torch.stack(padded)
    return batch


class PitVisDataModule(L.LightningDataModule):
    """PitVis videos -> training clips and whole validation videos.

    Args:
        root: dataset root in the PitVis layout.
        val_root: a separate held-out dataset; when set, every video of ``root`` trains.
        val_videos: held-out video numbers of ``root`` (when ``val_root`` is not set).
        val_fraction: otherwise, the fraction of ``root``'s videos held out (at least one).
        split_seed: seed of the deterministic shuffle behind ``val_fraction``.
        input_size: (height, width) frames are resized to; the model's (linked by the CLI).
        sample_fps: samples per second of video; the model's (linked by the CLI).
        receptive_field: frames one model output depends on (linked by the CLI).
        clip_length: samples per training clip; ``None`` trains on whole videos.
        clips_per_video: training clips drawn per video and epoch.
        batch_size: training clips per batch and rank (validation takes one whole video at a
            time).
        group_by_length: batch training clips of similar length together (whole videos of
            mixed lengths); otherwise batches are drawn uniformly.
        num_workers: DataLoader worker processes.
        augment: light colour / crop / flip augmentation of training clips.
        speeds: playback speeds training clips are drawn at, one per clip and epoch (see the
            module's docstring); ``None`` plays every case as recorded.
        disk_cache: keep decoded frames in ``<root>/.orstream_cache`` between runs.
        length_tolerance_s: largest accepted difference between a video's duration and the
            annotated span.
    """

    def __init__(
        self,
        root: str,
        val_root: str | None = None,
        val_videos: list[int] | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        input_size: tuple[int, int] = (128, 128),
        sample_fps: float = 1.0,
        receptive_field: int = 1,
        clip_length: int | None = None,
        clips_per_video: int = 1,
        batch_size: int = 1,
        group_by_length: bool = False,
        num_workers: int = 0,
        augment: bool = True,
        speeds: list[float] | None = None,
        disk_cache: bool = True,
        length_tolerance_s: float = 2.0,
    ) -> None:
        super().__init__()
        if clip_length is not None and clip_length < 1:
            raise OrstreamError(f"clip_length must be at least 1 (or null), got {clip_length}")
        if not 0.0 < val_fraction < 1.0:
            raise OrstreamError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        if speeds is not None and (not speeds or min(speeds) <= 0):
            raise OrstreamError(f"speeds must be a list of positive speeds, got {speeds}")
        self.root = Path(root)
        self.val_root = Path(val_root) if val_root is not None else None
        self.val_videos = val_videos
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.sample_fps = float(sample_fps)
        self.receptive_field = int(receptive_field)
        self.clip_length = clip_length
        self.clips_per_video = clips_per_video
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.num_workers = num_workers
        self.augment = augment
        self.speeds = tuple(float(speed) for speed in speeds or [1.0])
        self.disk_cache = disk_cache
        self.length_tolerance_s = length_tolerance_s
        self.train_data: list[PitVisVideo] = []
        self.val_data: list[PitVisVideo] = []

    def split(self) -> tuple[dict[int, tuple[Path, Path]], dict[int, tuple[Path, Path]]]:
        """(train, val) video number -> (video, annotations) paths."""
        found = find_annotated_videos(self.root)
        if self.val_root is not None:
            return found, find_annotated_videos(self.val_root)
        if self.val_videos is not None:
            missing = sorted(set(self.val_videos) - set(found))
            if missing:
                raise OrstreamError(f"{self.root}: val_videos {missing} not in the dataset")
            held_out = set(self.val_videos)
        else:
            if len(found) < 2:
                raise OrstreamError(f"{self.root}: a train/val split needs at least two videos")
            order = np.random.default_rng(self.split_seed).permutation(sorted(found))
            count = min(len(found) - 1, max(1, round(self.val_fraction * len(found))))
            held_out = {int(v) for v in order[:count]}
        train = {v: paths for v, paths in found.items() if v not in held_out}
        if not train or not held_out:
            raise OrstreamError(f"{self.root}: the split leaves no training or no val videos")
        return train, {v: paths for v, paths in found.items() if v in held_out}

    def setup(self, stage: str) -> None:
        if self.train_data and self.val_data:
            return
        train, val = self.split()
        self.train_data = self._load(train, self.root)
        self.val_data = self._load(val, self.val_root or self.root)

    def _load(self, videos: dict[int, tuple[Path, Path]], root: Path) -> list[PitVisVideo]:
        from tqdm import tqdm

        cache_dir = root / CACHE_FOLDER if self.disk_cache else None
        loaded = []
        progress = tqdm(videos.items(), desc=f"decoding {root}", unit="video", file=sys.stderr)
        for _, (video_path, annotations_path) in progress:
            loaded.append(
                load_video(
                    video_path,
                    annotations_path,
                    self.input_size,
                    self.sample_fps,
                    cache_dir,
                    self.length_tolerance_s,
                )
            )
        return loaded

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about the data it was trained on."""
        return {
            "root": str(self.root.resolve()),
            "val_root": str(self.val_root.resolve()) if self.val_root is not None else None,
            "train_videos": [video.video for video in self.train_data],
            "val_videos": [video.video for video in self.val_data],
            "sample_fps": self.sample_fps,
            "input_size": list(self.input_size),
            "clip_length": self.clip_length,
            "speeds": list(self.speeds),
            "train_seconds": sum(len(video) for video in self.train_data) / self.sample_fps,
            "phantom": phantom_metadata(self.root),
            "val_phantom": phantom_metadata(self.val_root) if self.val_root is not None else None,
        }

    def instrument_frequencies(self) -> np.ndarray:
        """float64 [19]: per instrument class, the fraction of training samples with known
        instruments (inside the patient) that show it."""
        if not self.train_data:
            raise OrstreamError("instrument frequencies need the training data (call setup)")
        known = np.concatenate(
            [video.instrument_hot[video.instrument_known] for video in self.train_data]
        )
        if not len(known):
            raise OrstreamError(f"{self.root}: no training sample has instrument labels")
        return known.mean(axis=0, dtype=np.float64)

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        clips = TrainClips(
            self.train_data,
            self.clip_length,
            self.receptive_field,
            self.clips_per_video,
            self.augment,
            self.speeds,
        )
        common: dict[str, Any] = {
            "num_workers": self.num_workers,
            "collate_fn": pad_collate,
            "persistent_workers": self.num_workers > 0,
        }
        sampler: GlobalBatchSampler
        if self.group_by_length:
            sampler = SimilarLengthSamples.for_run(self.trainer, clips.lengths(), self.batch_size)
        else:
            sampler = ShuffledSamples.for_run(
                self.trainer, clips.clips, self.batch_size, variants=len(self.speeds)
            )
        return DataLoader(clips, batch_size=self.batch_size, sampler=sampler, **common)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        return DataLoader(
            ValVideos(self.val_data), batch_size=1, num_workers=0, collate_fn=pad_collate
        )
