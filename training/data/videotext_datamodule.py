"""Lightning data for the video-text model: phantom clips with MiniLM embeddings of their texts.

Training batches hold samples of both levels (:mod:`orstream.training.data.videotext_data`): each
item is ``(frames [T, 3, H, W], text embedding [384], text id, is_clip, silent, step code)``; the
text id
makes equal texts (the same step in two cases) positives of each other rather than negatives.
:attr:`VideoTextDataModule.narration_bank` holds the embeddings of every training narration:
silent clips find their positives there; :attr:`VideoTextDataModule.step_prompts` the embeddings
of every step's description, in :data:`~orstream.labels.STEP_CODES` order, for zero-shot step
recognition, and :attr:`VideoTextDataModule.step_text_ids` which text ids are those
descriptions (text id -> row of ``step_prompts``). Validation serves the narrated clips of
held-out cases.

Under DDP every rank takes its share of the same global training batches
(:mod:`orstream.training.distributed.batches`); each item ends with its index, so validation,
which Lightning shares out, counts every held-out clip once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.labels import STEP_CODES
from orstream.pitvis.layout import parse_videos
from orstream.training.data.videotext_data import (
    ClipText,
    ClipTextDataset,
    clip_texts,
    step_description,
)
from orstream.training.distributed.batches import ShuffledSamples
from orstream.training.models.text_encoder import TextEncoder

Item = tuple[Tensor, Tensor, int, bool, bool, int, int]


class _Embedded(Dataset[Item]):
    """A :class:`ClipTextDataset` with each sample's text embedding, text id and index."""

    def __init__(self, clips: ClipTextDataset, embeddings: Tensor, ids: list[int]) -> None:
        self.clips, self.embeddings, self.ids = clips, embeddings, ids

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> Item:
        frames, _ = self.clips[index]
        sample = self.clips.samples[index]
        return (
            frames,
            self.embeddings[index],
            self.ids[index],
            sample.level == "clip",
            sample.silent,
            sample.step,
            index,
        )


class VideoTextDataModule(L.LightningDataModule):
    """Clips of a phantom dataset for training and validation.

    Args:
        root: the phantom dataset (``orstream phantom make``).
        train_videos: cases to train on, e.g. ``1-10``.
        val_videos: held-out cases.
        silent_videos: training cases whose narrations are withheld.
        frames_per_clip: frames of each sample.
        input_size: (height, width) of the frames (linked to the model's).
        batch_size: samples per step and rank.
        cache_dir: where decoded frames are cached.
        segment_window_s: also pair live windows of this many seconds with the description of
            the step they end in (None: whole runs only); see
            :func:`~orstream.training.data.videotext_data.clip_texts`.
        segment_stride_s: seconds between the ends of consecutive windows (None: the window's
            length, so they do not overlap).
    """

    def __init__(
        self,
        root: Path,
        train_videos: str = "1-8",
        val_videos: str = "9-10",
        silent_videos: str = "",
        frames_per_clip: int = 8,
        input_size: tuple[int, int] = (112, 192),
        batch_size: int = 16,
        cache_dir: Path | None = None,
        segment_window_s: float | None = None,
        segment_stride_s: float | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.train_videos = parse_videos(train_videos)
        self.val_videos = parse_videos(val_videos)
        self.silent_videos = parse_videos(silent_videos) if silent_videos else []
        self.frames_per_clip = frames_per_clip
        self.size = (int(input_size[0]), int(input_size[1]))
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.segment_window_s = segment_window_s
        self.segment_stride_s = segment_stride_s
        self.narration_bank = torch.zeros(0, 384)
        self.step_prompts = torch.zeros(0, 384)
        self.step_text_ids: dict[int, int] = {}
        self._train: _Embedded | None = None
        self._val: _Embedded | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        train = clip_texts(
            self.root,
            self.train_videos,
            self.frames_per_clip,
            self.silent_videos,
            self.segment_window_s,
            self.segment_stride_s,
        )
        val = [
            sample
            for sample in clip_texts(self.root, self.val_videos, self.frames_per_clip)
            if sample.level == "clip"
        ]
        encoder = TextEncoder.load()
        texts = sorted({sample.text for sample in train + val if sample.text})
        table = dict(zip(texts, encoder.encode(texts), strict=True))
        self._train = self._embedded(train, table, texts)
        self._val = self._embedded(val, table, texts)
        narrations = sorted({s.text for s in train if s.level == "clip" and s.text})
        self.narration_bank = torch.stack([table[text] for text in narrations])
        self.step_prompts = encoder.encode([step_description(code) for code in STEP_CODES])
        self.step_text_ids = {
            texts.index(step_description(code)): row
            for row, code in enumerate(STEP_CODES)
            if step_description(code) in texts
        }

    def _embedded(
        self, samples: list[ClipText], table: dict[str, Tensor], texts: list[str]
    ) -> _Embedded:
        clips = ClipTextDataset(self.root, samples, self.size, self.cache_dir)
        blank = torch.zeros(384)
        embeddings = torch.stack([table.get(s.text, blank) for s in samples])
        ids = [texts.index(s.text) if s.text else -1 - i for i, s in enumerate(samples)]
        return _Embedded(clips, embeddings, ids)

    def train_dataloader(self) -> DataLoader[Item]:
        assert self._train is not None
        sampler = ShuffledSamples.for_run(
            self.trainer, len(self._train), self.batch_size, drop_last=True
        )
        return DataLoader(self._train, batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader[Item]:
        assert self._val is not None
        return DataLoader(self._val, batch_size=self.batch_size)

    def describe(self) -> dict[str, Any]:
        """What the checkpoint records of its data."""
        return {
            "root": str(self.root),
            "train_videos": self.train_videos,
            "val_videos": self.val_videos,
            "silent_videos": self.silent_videos,
            "frames_per_clip": self.frames_per_clip,
            "segment_window_s": self.segment_window_s,
            "segment_stride_s": self.segment_stride_s,
        }
