"""Clips and their texts from a phantom dataset, for the video-text model.

Two levels, as OphCLIP trains on them:

- **clip** (fine): each narrated 10-second clip of ``narrations/narrations_NN.csv`` with its
  narration;
- **segment** (coarse): each run of one step in the annotations (at least ``MIN_SEGMENT_S``
  long) with the step's description, and the whole case with its title (``titles.csv``); with
  ``window_s``, also live windows: the ``window_s`` seconds ending every ``stride_s`` seconds
  of the case, each with the description of the step at its last second. That is what the edge
  asks of a live clip (which step is in progress now, from the last few seconds), at the scale
  it embeds one, where a whole run, its frames spread over minutes, looks nothing like a live
  window; a window across a step change is named by the step it ends in, so the causal model
  learns to follow a change within the window rather than seconds after it.

Each sample holds ``frames_per_clip`` frame times spread evenly over its span. Cases listed as
silent keep their clips but lose their narrations (``text`` is empty, ``silent`` is set): the
model sees their video only and pairs it with narrations through retrieval.

:class:`ClipTextDataset` decodes each video once (at every time its samples need, through
:func:`~orstream.training.data.frame_cache.load_frames`) and serves ``(frames [T, 3, H, W] float,
sample index)``; the texts stay in :attr:`ClipTextDataset.samples`, to embed once with MiniLM.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from orstream.errors import OrstreamError
from orstream.labels import step_name
from orstream.pitvis.csv_files import read_annotations
from orstream.pitvis.layout import TITLES_FILE, annotations_path, narrations_path, video_path
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.frame_cache import load_frames

MIN_SEGMENT_S = 3
"""Step runs shorter than this are not coarse samples (too brief to describe)."""

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class ClipText:
    """One video span and what is said of it.

    Attributes:
        video: the case.
        times: the seconds of its frames, increasing.
        text: the narration, step description or title ("" for a silent case's clip).
        level: ``clip`` (a narrated clip) or ``segment`` (a step run, or the whole case).
        silent: the case is silent: its narration is withheld.
        step: the step code of most of its seconds (zero-shot step recognition is scored on it).
    """

    video: int
    times: tuple[float, ...]
    text: str
    level: Literal["clip", "segment"]
    silent: bool = False
    step: int = 0


def step_description(code: int) -> str:
    """The coarse text of a step run: ``Surgical step: nasal corridor creation.``"""
    return f"Surgical step: {step_name(code).replace('_', ' ')}."


def clip_texts(
    root: Path,
    videos: Iterable[int],
    frames_per_clip: int,
    silent: Iterable[int] = (),
    window_s: float | None = None,
    stride_s: float | None = None,
) -> list[ClipText]:
    """Every clip and segment sample of ``videos`` (see the module docstring).

    Raises:
        OrstreamError: a narrations file, the titles file or an annotations file is missing
            or malformed.
    """
    if frames_per_clip < 1:
        raise OrstreamError(f"frames_per_clip must be at least 1, not {frames_per_clip}")
    if window_s is not None and (window_s <= 0 or (stride_s is not None and stride_s <= 0)):
        raise OrstreamError(f"windows of {window_s} s every {stride_s} s: give positive seconds")
    quiet = set(silent)
    titles = _titles(root / TITLES_FILE)
    samples: list[ClipText] = []
    for video in videos:
        hidden = video in quiet
        narrations = _narrations(narrations_path(root, video))
        annotations = read_annotations(annotations_path(root, video))
        seconds = annotations.time.astype(float)
        for start, end, text in narrations:
            times = _spread(start, end, frames_per_clip)
            inside = annotations.step[(seconds >= start) & (seconds < end)]
            if inside.size == 0:
                raise OrstreamError(
                    f"{narrations_path(root, video)}: clip {start:g}-{end:g} s lies outside "
                    "the annotated seconds"
                )
            step = int(np.bincount(inside - inside.min()).argmax() + inside.min())
            narration = "" if hidden else text
            samples.append(ClipText(video, times, narration, "clip", hidden, step))
        for code, first, last in _runs(annotations.step):
            if seconds[last] + 1 - seconds[first] >= MIN_SEGMENT_S:
                times = _spread(seconds[first], seconds[last] + 1, frames_per_clip)
                described = step_description(code)
                samples.append(ClipText(video, times, described, "segment", hidden, code))
        if window_s is not None:
            stride = window_s if stride_s is None else stride_s
            for end in np.arange(seconds[0] + window_s, seconds[-1] + 1 + 1e-9, stride):
                times = _spread(end - window_s, end, frames_per_clip)
                # The step of the window's last second.
                code = int(annotations.step[np.searchsorted(seconds, end) - 1])
                samples.append(
                    ClipText(video, times, step_description(code), "segment", hidden, code)
                )
        if video not in titles:
            raise OrstreamError(f"{root / TITLES_FILE}: no title for video {video}")
        whole = _spread(seconds[0], seconds[-1] + 1, frames_per_clip)
        steps = annotations.step
        common = int(np.bincount(steps - steps.min()).argmax() + steps.min())
        samples.append(ClipText(video, whole, titles[video], "segment", hidden, common))
    return samples


class ClipTextDataset(Dataset[tuple[torch.Tensor, int]]):
    """The frames of each sample, normalised for the frame encoder.

    Args:
        root: the phantom dataset.
        samples: from :func:`clip_texts`.
        size: (height, width) of the frames.
        cache_dir: where decoded frames are cached (None: memory only).
    """

    def __init__(
        self,
        root: Path,
        samples: list[ClipText],
        size: tuple[int, int],
        cache_dir: Path | None = None,
    ) -> None:
        self.samples = samples
        self._frames: dict[int, np.ndarray] = {}
        self._rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(samples)
        for video in sorted({sample.video for sample in samples}):
            path = video_path(root, video)
            fps = probe_video(path).fps
            mine = [i for i, sample in enumerate(samples) if sample.video == video]
            wanted = sorted({round(t * fps) for i in mine for t in samples[i].times})
            self._frames[video] = load_frames(
                path, np.array(wanted, dtype=np.int64), size, cache_dir
            )
            row_of = {index: row for row, index in enumerate(wanted)}
            for i in mine:
                self._rows[i] = np.array([row_of[round(t * fps)] for t in samples[i].times])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames = self._frames[self.samples[index].video][self._rows[index]]
        normalised = (frames.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(normalised).permute(0, 3, 1, 2).contiguous(), index


def _spread(start: float, end: float, count: int) -> tuple[float, ...]:
    """``count`` times evenly inside [start, end): the middles of equal parts."""
    step = (end - start) / count
    return tuple(start + step * (i + 0.5) for i in range(count))


def _runs(codes: np.ndarray) -> list[tuple[int, int, int]]:
    """(code, first row, last row) of each run of equal consecutive codes."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(codes)) + 1])
    ends = np.concatenate([starts[1:] - 1, [len(codes) - 1]])
    return [(int(codes[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _narrations(path: Path) -> list[tuple[float, float, str]]:
    rows = _read_csv(path, ("int_video", "int_start", "int_end", "text"))
    try:
        return [(float(r["int_start"]), float(r["int_end"]), r["text"]) for r in rows]
    except ValueError:
        raise OrstreamError(f"{path}: int_start and int_end must be integers") from None


def _titles(path: Path) -> dict[int, str]:
    rows = _read_csv(path, ("int_video", "title"))
    try:
        return {int(row["int_video"]): row["title"] for row in rows}
    except ValueError:
        raise OrstreamError(f"{path}: int_video must be an integer") from None


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise OrstreamError(f"{path}: no such file")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise OrstreamError(f"{path}: expected columns {','.join(columns)}")
        return list(reader)
