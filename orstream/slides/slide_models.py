"""A slide package's two graphs on ONNX Runtime: tiles to features, features to slide outputs.

The server tier and the ``orstream wsi`` commands run slide packages without the edge's
backends (the server may not import the edge), so this is the one place that feeds them. On
opening, both graphs must reproduce the package's golden reference
(:func:`~orstream.package.onnx_session.open_session`): a package whose graphs compute something
else is refused before it reads a slide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import PATCH_FEATURES, SLIDE, SLIDE_OUTPUTS, SlideEncoderSpec
from orstream.package.loading import ModelPackage, load_package
from orstream.package.onnx_session import open_session

DEFAULT_PACKAGE = Path(__file__).resolve().parent / "packages" / "slide_mil"
"""The slide package shipped with orstream, trained on phantom slides."""


@dataclass(frozen=True)
class SlideOutputs:
    """The slide encoder's answer for one slide.

    Attributes:
        probabilities: softmax over the slide classes, [S].
        fraction: tumour share of the tissue (0..1).
        tile_tumour: tumour probability of each tile, [N].
        attention: each tile's attention weight, [N] (sums to 1).
    """

    probabilities: np.ndarray
    fraction: float
    tile_tumour: np.ndarray
    attention: np.ndarray


class SlideModels:
    """The patch and slide encoders of a slide package, each in an ONNX Runtime session.

    Args:
        package: the package folder (default :data:`DEFAULT_PACKAGE`).
        threads: ONNX Runtime threads per session (default: half the usable CPUs, so reading
            keeps the rest).

    Raises:
        OrstreamError: the package cannot be opened, is not a slide package, or misses its
            golden reference.
    """

    def __init__(self, package: Path | None = None, threads: int | None = None) -> None:
        self.package = _open(package or DEFAULT_PACKAGE)
        spec = self.package.card.slide
        assert spec is not None  # _open checked the task
        self.spec: SlideEncoderSpec = spec
        self.labels = tuple(label.name for label in self.package.card.labels[spec.labels])
        image = self.package.card.inputs[0]
        assert image.mean is not None and image.std is not None and image.scale is not None
        self._input = image.name
        std = np.array(image.std, np.float32)
        # (x / scale - mean) / std as one multiply and one add per value
        self._gain = (1.0 / (image.scale * std)).astype(np.float32)
        self._offset = (-np.array(image.mean, np.float32) / std).astype(np.float32)
        self.threads = threads or max(1, len(os.sched_getaffinity(0)) // 2)
        self._patch = open_session(self.package, "model", self.threads)
        self._slide = open_session(self.package, "slide", self.threads)

    @property
    def tile(self) -> int:
        """The tile side in pixels the patch encoder takes."""
        return self.spec.tile

    def normalise(self, tiles: np.ndarray) -> np.ndarray:
        """RGB uint8 tiles [B, tile, tile, 3] as the patch encoder's input, float32 NCHW scaled
        and normalised as the card says."""
        planes = tiles.transpose(0, 3, 1, 2)
        batch = np.empty(planes.shape, np.float32)
        np.multiply(planes, self._gain[:, None, None], out=batch)
        batch += self._offset[:, None, None]
        return batch

    def features(self, batch: np.ndarray) -> np.ndarray:
        """Features [B, F] of tiles :meth:`normalise` prepared."""
        features: np.ndarray = self._patch.run([PATCH_FEATURES], {self._input: batch})[0]
        return features

    def encode(self, tiles: np.ndarray) -> np.ndarray:
        """Features [B, F] of RGB uint8 tiles [B, tile, tile, 3]."""
        return self.features(self.normalise(tiles))

    def classify(self, features: np.ndarray) -> SlideOutputs:
        """The slide's outputs from the features of all its tiles, [N, F] (N >= 1)."""
        logits, fraction, tile_logits, attention = self._slide.run(
            list(SLIDE_OUTPUTS), {PATCH_FEATURES: features[None].astype(np.float32)}
        )
        shifted = np.exp(logits[0] - logits[0].max())
        return SlideOutputs(
            probabilities=shifted / shifted.sum(),
            fraction=float(fraction[0]),
            tile_tumour=1.0 / (1.0 + np.exp(-tile_logits[0])),
            attention=attention[0],
        )


def _open(path: Path) -> ModelPackage:
    package = load_package(path)
    card = package.card
    if card.task != SLIDE or card.slide is None:
        raise OrstreamError(f"model package {path} is a {card.task} package, not {SLIDE}")
    if card.hashes.reference is None:
        raise OrstreamError(f"model package {path} has no golden reference (reference.npz)")
    return package
