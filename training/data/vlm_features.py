"""The frozen visual tokens the vision-language model trains on, computed once and cached.

Surgical cases: every annotated second's frame (frame ``round(t * fps)``, where the labels were
taken) through :class:`~orstream.vlm.visual.frame_features.FrameFeatures`, so a window of any
question or narration is a slice of its case's array. Slides: the region features of
:func:`~orstream.vlm.visual.slide_features.slide_region_features`. The vision encoders are frozen in
every stage (GMAI-VL and LLaVA train the projector and the language model over a fixed
encoder), so encoding once per data set is exact, and keeps each epoch to the language model's
work on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from orstream.pitvis.csv_files import read_annotations
from orstream.pitvis.layout import annotations_path, video_path
from orstream.slides.slide_models import SlideModels
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.frame_cache import load_frames
from orstream.vlm.visual.frame_features import FrameFeatures
from orstream.vlm.visual.slide_features import slide_region_features


def case_tokens(
    root: Path, video: int, encoder: FrameFeatures, cache_dir: Path | None
) -> np.ndarray:
    """Tokens [seconds, tokens per frame, width] of each annotated second of ``video``, in the
    annotations' row order."""
    cache = _cache_file(cache_dir, video_path(root, video), encoder.settings)
    if cache is not None and cache.is_file():
        return np.load(cache)
    path = video_path(root, video)
    fps = probe_video(path).fps
    seconds = read_annotations(annotations_path(root, video)).time
    indices = np.array([round(float(t) * fps) for t in seconds], dtype=np.int64)
    frames = load_frames(path, indices, encoder.size, None)
    tokens = encoder.encode(frames)
    if cache is not None:
        _save(cache, tokens)
    return tokens


def slide_tokens(
    root: Path,
    slide: str,
    models: SlideModels,
    regions: tuple[int, int],
    cache_dir: Path | None,
) -> np.ndarray:
    """Region tokens [regions, width] of ``slide`` of the slide phantom at ``root``."""
    path = root / "slides" / f"{slide}.tiff"
    cache = _cache_file(cache_dir, path, f"{models.package.card.hashes.model_onnx}|{regions}")
    if cache is not None and cache.is_file():
        return np.load(cache)
    tokens = slide_region_features(path, models, regions)
    if cache is not None:
        _save(cache, tokens)
    return tokens


def _save(cache: Path, tokens: np.ndarray) -> None:
    """Write a cache file whole or not at all (a rank or node reading it meanwhile sees the
    old state, never half an array)."""
    partial = cache.with_name(f".{cache.stem}.{os.getpid()}.npy")
    np.save(partial, tokens)
    os.replace(partial, cache)


def _cache_file(cache_dir: Path | None, source: Path, settings: str) -> Path | None:
    """A cache file named by the source's path, size and time and the encoder's settings, so
    a rewritten video or slide is encoded afresh."""
    if cache_dir is None:
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{settings}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"vlm_{source.stem}_{digest}.npy"
