"""A tokenizer package's two graphs run together on ONNX Runtime: frames to tokens and back.

Frames go through the card's pre-processing (resize to the encoder's input size, normalise as
training did) and through the graphs in calls of up to the card's ``max_batch`` rows, so a
video's frames are batched as the export checked them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.package.card import RECONSTRUCTION, TOKEN_INDICES
from orstream.package.loading import ModelPackage
from orstream.package.preprocess import ImagePreprocessor


class TokenizerRunner:
    """Encodes RGB frames to indices and decodes indices to images with ``package``'s graphs.

    Raises:
        OrstreamError: ``package`` is not a tokenizer package, or a graph does not load.
    """

    def __init__(self, package: ModelPackage) -> None:
        self.spec = package.tokenizer_section()
        self.package = package
        self.preprocess = ImagePreprocessor.from_card(package.card)
        self.encoder = OnnxRuntimeBackend()
        self.encoder.load(package)
        self.detokenizer = OnnxRuntimeBackend(graph="detokenizer")
        self.detokenizer.load(package)

    @property
    def rows(self) -> int:
        """Frames per call."""
        return min(self.encoder.max_batch, self.detokenizer.max_batch)

    def encode(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames (any size) -> their indices, int64 [N, G, h, w]."""
        parts = [
            self.encoder.infer({self.preprocess.spec.name: self.preprocess.batch(chunk)})[
                TOKEN_INDICES
            ]
            for chunk in _chunks(frames, self.rows)
        ]
        return np.concatenate(parts)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Indices [N, G, h, w] -> the images they rebuild, float32 RGB in 0..1 [N, H, W, 3]."""
        parts = [
            self.detokenizer.infer({TOKEN_INDICES: np.ascontiguousarray(chunk, np.int64)})[
                RECONSTRUCTION
            ]
            for chunk in _chunks(indices, self.rows)
        ]
        return np.concatenate(parts).transpose(0, 2, 3, 1)


def to_pixels(images: np.ndarray) -> np.ndarray:
    """RGB in 0..1 -> uint8 pixels (rounded)."""
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _chunks(items: Sequence[np.ndarray] | np.ndarray, rows: int) -> list[Any]:
    return [items[start : start + rows] for start in range(0, len(items), rows)]
