"""A tokenizer package scored on held-out phantom frames, beside JPEG at the same bits.

The frames are those training validated on: ``frames_per_clip`` evenly spaced frames of every
narrated clip of the cases, resized to cover the encoder's input size and centre-cropped to it
(:func:`~orstream.training.data.tokenizer_datamodule.clip_frames`), so the numbers compare with the
checkpoint's ``val_*`` metrics. Each frame goes through both graphs of the package on ONNX
Runtime; the reconstruction (RGB in 0..1, as the detokenizer gives it) is scored against the
frame on 0..1 pixels:

- ``psnr``: dB, the mean over frames of ``-10 log10(MSE)``;
- ``ssim``: mean SSIM (11x11 Gaussian window, sigma 1.5, as validation measures it);
- ``codebook_usage``: the fraction of all ``groups x codes`` codes chosen at least once;
- ``perplexity``: ``exp`` of the entropy of each sub-codebook's code frequencies, mean over
  sub-codebooks (at most ``codes``);
- ``bpp``: bits per pixel of the tokens, ``groups * h * w * log2(codes) / (H * W)``.

JPEG (OpenCV, 4:2:0) is given the same budget per frame: of the qualities 1 to 100, the one whose
file is largest without exceeding the tokens' bits (headers included, which the tokens do not
need); ``jpeg_psnr``, ``jpeg_ssim`` and ``jpeg_bpp`` are scored the same way.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from orstream.errors import OrstreamError
from orstream.export.tokenizer.runner import TokenizerRunner
from orstream.package.loading import load_package
from orstream.training.data.tokenizer_datamodule import clip_frames
from orstream.training.data.videotext_data import clip_texts

TARGET_PSNR = 26.0
"""dB the package should reach on held-out frames."""
DEFAULT_FRAMES_PER_CLIP = 2
"""Frames per clip when the card records none (the data module's default)."""
JPEG_QUALITIES = range(1, 101)

Progress = Callable[[str], None]


def progress_to_stderr(message: str) -> None:
    print(f"[eval] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TokenizerReport:
    """The scores (see the module docstring)."""

    videos: list[int]
    frames: int
    psnr: float
    ssim: float
    codebook_usage: float
    perplexity: float
    bpp: float
    jpeg_psnr: float
    jpeg_ssim: float
    jpeg_bpp: float
    jpeg_quality: float
    """The mean of the qualities chosen per frame."""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def psnr(reconstruction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR in dB of each image of ``reconstruction`` against ``target``, both [N, ...] in
    0..1 (an exact copy: capped at 100 dB)."""
    error = ((reconstruction.astype(np.float64) - target) ** 2).reshape(len(target), -1)
    return -10.0 * np.log10(np.maximum(error.mean(axis=1), 1e-10))


def ssim(reconstruction: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of RGB images [N, H, W, 3] in 0..1."""
    value = structural_similarity_index_measure(
        torch.from_numpy(np.ascontiguousarray(reconstruction, np.float32)).permute(0, 3, 1, 2),
        torch.from_numpy(np.ascontiguousarray(target, np.float32)).permute(0, 3, 1, 2),
        data_range=1.0,
    )
    assert isinstance(value, torch.Tensor)
    return float(value)


def code_statistics(indices: np.ndarray, codes: int) -> tuple[float, float]:
    """(usage, perplexity) of indices [N, G, h, w] into ``G`` sub-codebooks of ``codes``."""
    groups = indices.shape[1]
    counts = np.stack(
        [np.bincount(indices[:, g].ravel(), minlength=codes) for g in range(groups)]
    ).astype(np.float64)
    frequencies = counts / counts.sum(axis=1, keepdims=True)
    logs = np.log(np.where(frequencies > 0, frequencies, 1.0))
    entropy = -(frequencies * logs).sum(axis=1)
    return float((counts > 0).mean()), float(np.exp(entropy).mean())


def token_bits(groups: int, grid: tuple[int, int], codes: int) -> float:
    """Bits of one image's tokens: ``groups * h * w`` indices of ``log2(codes)`` bits."""
    return groups * grid[0] * grid[1] * math.log2(codes)


def jpeg_at_budget(image: np.ndarray, bits: float) -> tuple[np.ndarray, int, int]:
    """The JPEG of RGB uint8 ``image`` whose file is largest without exceeding ``bits``.

    Returns:
        (the decoded RGB image, the file's size in bytes, the quality).

    Raises:
        OrstreamError: even quality 1 exceeds ``bits``.
    """
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    best: tuple[np.ndarray, int] | None = None
    for quality in JPEG_QUALITIES:
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok  # an RGB uint8 image always encodes
        if encoded.size * 8 <= bits and (best is None or encoded.size > best[0].size):
            best = (encoded, quality)
    if best is None:
        raise OrstreamError(
            f"no JPEG of a {image.shape[1]}x{image.shape[0]} frame fits {bits:g} bits"
        )
    encoded, quality = best
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert decoded is not None  # OpenCV reads what it just wrote
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), int(encoded.size), quality


def evaluate_tokenizer(
    package_path: Path,
    data: Path,
    videos: list[int] | None = None,
    frames_per_clip: int | None = None,
    progress: Progress = progress_to_stderr,
) -> TokenizerReport:
    """Score the tokenizer package at ``package_path`` on the frames of ``videos`` of the
    phantom dataset ``data`` (default: the card's val cases and frames per clip).

    Raises:
        OrstreamError: the package is not a tokenizer package, the card records no val cases
            and none are given, or the dataset lacks what the frames need.
    """
    package = load_package(package_path)
    runner = TokenizerRunner(package)
    spec = runner.spec
    training = package.card.training
    videos = videos or training.cases.get("val")
    if not videos:
        raise OrstreamError(f"{package_path}: the card records no val cases; pass --videos")
    if frames_per_clip is None:
        recorded = training.data.get("val_frames_per_clip")
        frames_per_clip = recorded if isinstance(recorded, int) else DEFAULT_FRAMES_PER_CLIP
    if not data.is_dir():
        raise OrstreamError(f"{data}: dataset root not found")
    samples = [s for s in clip_texts(data, videos, frames_per_clip) if s.level == "clip"]
    frames = clip_frames(data, samples, spec.image_size, None)
    progress(f"{len(frames)} frames of videos {videos}: tokenizing and rebuilding")
    indices = runner.encode(list(frames))
    rebuilt = runner.decode(indices)
    target = frames.astype(np.float32) / 255.0
    usage, perplexity = code_statistics(indices, spec.codes)
    height, width = spec.image_size
    bits = token_bits(spec.groups, spec.grid, spec.codes)
    progress(f"JPEG of each frame at {bits / (height * width):.3f} bits per pixel or below")
    jpegs = [jpeg_at_budget(frame, bits) for frame in frames]
    jpeg_images = np.stack([image for image, _, _ in jpegs]).astype(np.float32) / 255.0
    return TokenizerReport(
        videos=list(videos),
        frames=len(frames),
        psnr=float(psnr(rebuilt, target).mean()),
        ssim=ssim(rebuilt, target),
        codebook_usage=usage,
        perplexity=perplexity,
        bpp=bits / (height * width),
        jpeg_psnr=float(psnr(jpeg_images, target).mean()),
        jpeg_ssim=ssim(jpeg_images, target),
        jpeg_bpp=float(np.mean([size * 8 for _, size, _ in jpegs])) / (height * width),
        jpeg_quality=float(np.mean([quality for _, _, quality in jpegs])),
    )
