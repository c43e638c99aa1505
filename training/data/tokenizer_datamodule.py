"""Lightning data for the visual tokenizer: frames of phantom cases at the model's input size.

Frames come from the narrated clips of each case (``narrations/narrations_NN.csv``, read by
:func:`~orstream.training.data.videotext_data.clip_texts`; the phantom narrates every 10 s, so the
clips tile the case): ``frames_per_clip`` evenly spaced frames of every clip of the training
cases and ``val_frames_per_clip`` of the held-out ones. Each video is decoded once, at every
frame it needs (:func:`~orstream.training.data.frame_cache.load_frames`), resized to cover the input
size and centre-cropped to it, so a 320x256 phantom frame becomes 256x256 without stretching
(the circular field of view stays round).

Items are ``(image [3, H, W] in [-1, 1], narration embedding [384], has_text, index)``. With
``with_text`` (stage 2; linked from the model) the narrations are embedded once by the frozen
MiniLM; without it (stage 1) the embeddings are zeros, ``has_text`` is False and MiniLM is not
loaded. Training frames are flipped left-right at random when ``augment`` is set.

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`); validation, which Lightning shares out, counts
every held-out frame once by its index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.pitvis.layout import video_path
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.frame_cache import load_frames
from orstream.training.data.videotext_data import ClipText, clip_texts
from orstream.training.distributed.batches import ShuffledSamples
from orstream.training.models.tokenizer import TEXT_WIDTH

Item = tuple[Tensor, Tensor, bool, int]


class TokenizerFrames(Dataset[Item]):
    """Frames [N, H, W, 3] uint8 with one sentence embedding each (zeros where none).

    Args:
        frames: the frames.
        texts: [N, 384] narration embeddings.
        has_text: [N] whether each frame has one.
        augment: flip frames left-right at random.
    """

    def __init__(
        self, frames: np.ndarray, texts: Tensor, has_text: Tensor, augment: bool = False
    ) -> None:
        self.frames, self.texts, self.has_text, self.augment = frames, texts, has_text, augment

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Item:
        image = torch.from_numpy(self.frames[index]).permute(2, 0, 1).float() / 127.5 - 1.0
        if self.augment and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        return image, self.texts[index], bool(self.has_text[index]), index


def covering_size(source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of ``source`` scaled, keeping its aspect, to just cover ``target``."""
    scale = max(target[0] / source[0], target[1] / source[1])
    return (
        max(target[0], round(source[0] * scale)),
        max(target[1], round(source[1] * scale)),
    )


def clip_frames(
    root: Path, samples: list[ClipText], size: tuple[int, int], cache_dir: Path | None
) -> np.ndarray:
    """The frames of every sample's times, in order, as uint8 [N, H, W, 3] of ``size``
    (resized to cover it, then centre-cropped)."""
    parts: list[np.ndarray] = []
    for video in sorted({sample.video for sample in samples}):
        path = video_path(root, video)
        info = probe_video(path)
        times = [t for sample in samples if sample.video == video for t in sample.times]
        indices = np.array([min(round(t * info.fps), info.frame_count - 1) for t in times])
        wanted, rows = np.unique(indices, return_inverse=True)
        cover = covering_size((info.height, info.width), size)
        decoded = load_frames(path, wanted, cover, cache_dir)
        top, left = (cover[0] - size[0]) // 2, (cover[1] - size[1]) // 2
        parts.append(decoded[rows, top : top + size[0], left : left + size[1]])
    return np.concatenate(parts)


class TokenizerDataModule(L.LightningDataModule):
    """Frames of a phantom dataset for training and validation.

    Args:
        root: the phantom dataset (``orstream phantom make``).
        train_videos: cases to train on.
        val_videos: held-out cases.
        frames_per_clip: frames taken from each narrated clip of a training case.
        val_frames_per_clip: the same for the held-out cases.
        input_size: (height, width) of the frames (linked to the model's).
        with_text: embed each frame's narration with MiniLM (linked to the model's stage).
        batch_size: frames per step and rank.
        val_batch_size: frames per validation step.
        augment: flip training frames left-right at random.
        num_workers: data loader workers.
        cache_dir: where decoded frames are cached (None: memory only).
    """

    def __init__(
        self,
        root: Path,
        train_videos: list[int] | None = None,
        val_videos: list[int] | None = None,
        frames_per_clip: int = 10,
        val_frames_per_clip: int = 2,
        input_size: tuple[int, int] = (256, 256),
        with_text: bool = False,
        batch_size: int = 8,
        val_batch_size: int = 16,
        augment: bool = True,
        num_workers: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.train_videos = list(train_videos or range(1, 9))
        self.val_videos = list(val_videos or [9, 10])
        if set(self.train_videos) & set(self.val_videos):
            raise OrstreamError(
                f"train_videos and val_videos share cases "
                f"{sorted(set(self.train_videos) & set(self.val_videos))}"
            )
        self.frames_per_clip = frames_per_clip
        self.val_frames_per_clip = val_frames_per_clip
        self.size = (int(input_size[0]), int(input_size[1]))
        self.with_text = with_text
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.augment = augment
        self.num_workers = num_workers
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._train: TokenizerFrames | None = None
        self._val: TokenizerFrames | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        if not self.root.is_dir():
            raise OrstreamError(f"{self.root}: dataset root not found")
        train = self._clips(self.train_videos, self.frames_per_clip)
        val = self._clips(self.val_videos, self.val_frames_per_clip)
        table = self._embeddings(sorted({sample.text for sample in train + val}))
        self._train = self._frames(train, table, self.augment)
        self._val = self._frames(val, table, False)

    def _clips(self, videos: list[int], frames_per_clip: int) -> list[ClipText]:
        return [s for s in clip_texts(self.root, videos, frames_per_clip) if s.level == "clip"]

    def _embeddings(self, texts: list[str]) -> dict[str, Tensor]:
        if not self.with_text:
            return {}
        from orstream.training.models.text_encoder import TextEncoder

        return dict(zip(texts, TextEncoder.load().encode(texts), strict=True))

    def _frames(
        self, samples: list[ClipText], table: dict[str, Tensor], augment: bool
    ) -> TokenizerFrames:
        frames = clip_frames(self.root, samples, self.size, self.cache_dir)
        blank = torch.zeros(TEXT_WIDTH)
        texts = [table.get(sample.text, blank) for sample in samples for _ in sample.times]
        has_text = [sample.text in table for sample in samples for _ in sample.times]
        return TokenizerFrames(frames, torch.stack(texts), torch.tensor(has_text), augment)

    def train_dataloader(self) -> DataLoader[Item]:
        assert self._train is not None
        sampler = ShuffledSamples.for_run(
            self.trainer, len(self._train), self.batch_size, drop_last=True
        )
        return DataLoader(
            self._train,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader[Item]:
        assert self._val is not None
        return DataLoader(self._val, batch_size=self.val_batch_size, num_workers=self.num_workers)

    def describe(self) -> dict[str, Any]:
        """What the checkpoint records of its data."""
        return {
            "root": str(self.root),
            "train_videos": self.train_videos,
            "val_videos": self.val_videos,
            "frames_per_clip": self.frames_per_clip,
            "val_frames_per_clip": self.val_frames_per_clip,
            "input_size": list(self.size),
            "with_text": self.with_text,
            "train_frames": 0 if self._train is None else len(self._train),
            "val_frames": 0 if self._val is None else len(self._val),
        }
