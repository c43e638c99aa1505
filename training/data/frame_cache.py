"""Decode a video once at the sampled frame indices into a small uint8 array, cached.

Decoding 720p H.264 costs far more than a training step of a tiny encoder, so every video is
decoded exactly once per (file content, frame indices, size): frames are resized right after
decoding with OpenCV's area interpolation -- the same resize the model card asks the edge to do
(:data:`RESIZE_INTERPOLATION`), so the model sees the same pixels in training and deployment. The
result lives in memory and, optionally, in an ``.npy`` file whose name holds a digest of the
video's bytes, the size and the indices, so a changed video or setting never reads a stale cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from orstream.errors import OrstreamError

RESIZE_INTERPOLATION = "area"
"""How training resizes frames (a model card's resize interpolation, cv2.INTER_AREA)."""

DECODE_CHUNK = 32
"""Full-resolution frames held at once while decoding (720p RGB is 2.7 MB a frame)."""


def load_frames(
    path: Path, indices: np.ndarray, size: tuple[int, int], cache_dir: Path | None
) -> np.ndarray:
    """Frames ``indices`` of the video ``path`` resized to ``size`` (H, W): uint8 [N, H, W, 3]
    RGB (``orstream.streams.sources.video_file.probe_video`` has checked the file).

    With ``cache_dir`` the array is read from, or written to, an ``.npy`` file there.
    """
    cache_file = None
    if cache_dir is not None:
        cache_file = cache_dir / _cache_name(path, indices, size)
        if cache_file.is_file():
            frames = np.load(cache_file)
            if frames.shape == (len(indices), *size, 3) and frames.dtype == np.uint8:
                return frames
    frames = _decode(path, indices, size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(f".{os.getpid()}.partial")
        with partial.open("wb") as handle:
            np.save(handle, frames)
        partial.replace(cache_file)
    return frames


def _decode(path: Path, indices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import decord

    height, width = size
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as error:  # decord raises its own DECORDError or RuntimeError
        raise OrstreamError(f"{path}: not a readable video ({_first_line(error)})") from None
    frames = np.empty((len(indices), height, width, 3), dtype=np.uint8)
    for start in range(0, len(indices), DECODE_CHUNK):
        chunk = indices[start : start + DECODE_CHUNK]
        try:
            batch = reader.get_batch(chunk.tolist()).asnumpy()
        except Exception as error:  # a truncated or corrupt stream fails mid-file
            raise OrstreamError(
                f"{path}: cannot decode frames {chunk[0]}..{chunk[-1]} ({_first_line(error)})"
            ) from None
        for offset, image in enumerate(batch):
            frames[start + offset] = cv2.resize(
                image, (width, height), interpolation=cv2.INTER_AREA
            )
    return frames


def _cache_name(path: Path, indices: np.ndarray, size: tuple[int, int]) -> str:
    content = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            content.update(block)
    sampled = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    return (
        f"{path.stem}-{content.hexdigest()[:16]}-{size[0]}x{size[1]}-{sampled.hexdigest()[:8]}.npy"
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
