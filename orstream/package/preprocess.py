"""Card-driven pre-processing: an RGB uint8 camera frame to a model's image input tensor.

The card's image input says how the model was trained to see frames: resize to H x W with a
given interpolation, scale to 0..1, normalise per channel with mean/std, lay out as NCHW with a
batch dimension of 1. Scaling and normalising fold into one multiply-add per channel, done on
the whole frame at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import InputSpec, ModelCard

INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


class FramePreprocessor(Protocol):
    """What a model runner needs of a pre-processor: the input it makes, its size, the call."""

    spec: InputSpec
    size: tuple[int, int]
    """(H, W) of the model input."""

    def __call__(self, image: np.ndarray) -> Any:
        """One RGB uint8 frame -> what the backend takes for ``spec`` (an array or a tensor)."""
        ...

    def batch(self, images: Sequence[np.ndarray]) -> Any:
        """Several frames -> one input of batch ``len(images)``, in order."""
        ...


def image_spec(card: ModelCard) -> InputSpec:
    """The card's only image input."""
    images = [spec for spec in card.inputs if spec.layout is not None]
    if len(images) != 1:
        raise OrstreamError(f"card {card.name!r} has {len(images)} image inputs, expected 1")
    return images[0]


def normalisation(spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float32 (gain, bias) with ``x * gain + bias == (x / scale - mean) / std``.

    Raises:
        OrstreamError: ``spec`` is not an image input.
    """
    if spec.layout is None or spec.resize is None or spec.mean is None or spec.std is None:
        raise OrstreamError(f"input {spec.name!r} of the card is not an image input")
    assert spec.scale is not None  # the card validates image inputs as a whole
    std = np.asarray(spec.std, dtype=np.float64)
    mean = np.asarray(spec.mean, dtype=np.float64)
    return (1.0 / (spec.scale * std)).astype(np.float32), (-mean / std).astype(np.float32)


def check_frame(image: Any) -> None:
    """Refuse anything but an RGB uint8 frame of shape (height, width, 3), in one line."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise OrstreamError(
            f"expected an RGB uint8 frame of shape (height, width, 3), got "
            f"{type(image).__name__} {getattr(image, 'dtype', '')} "
            f"{getattr(image, 'shape', '')}"
        )
    if image.shape[2] != 3:
        raise OrstreamError(f"expected 3 colour channels, got a frame of shape {image.shape}")


def preprocessor_for(backend: object, spec: InputSpec) -> FramePreprocessor:
    """The backend's own pre-processor for ``spec`` if it offers one, else an
    :class:`ImagePreprocessor`.

    A backend offering ``image_preprocessor(spec)`` does the resize and normalisation where it
    runs the model (on the GPU for torch) and takes what that returns in ``infer``.
    """
    own = getattr(backend, "image_preprocessor", None)
    if own is not None:
        preprocessor: FramePreprocessor | None = own(spec)
        if preprocessor is not None:
            return preprocessor
    return ImagePreprocessor(spec)


class ImagePreprocessor:
    """Turns frames into one image input of a model package.

    Args:
        spec: the card's image input (``layout`` set).
    """

    def __init__(self, spec: InputSpec) -> None:
        self._gain, self._bias = normalisation(spec)
        assert spec.resize is not None  # normalisation() checked it is an image input
        self.spec = spec
        self.size = (spec.resize.height, spec.resize.width)
        self._interpolation = INTERPOLATION[spec.resize.interpolation]

    @classmethod
    def from_card(cls, card: ModelCard) -> ImagePreprocessor:
        """The pre-processor of the card's only image input."""
        return cls(image_spec(card))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Pre-process one frame.

        Args:
            image: RGB uint8 array of shape (height, width, 3).

        Returns:
            float32 array of shape (1, 3, H, W), C-contiguous.
        """
        check_frame(image)
        height, width = self.size
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=self._interpolation)
        planar = image.transpose(2, 0, 1)[np.newaxis]
        out = np.empty((1, 3, height, width), dtype=np.float32)
        np.multiply(planar, self._gain[:, None, None], out=out)
        out += self._bias[:, None, None]
        return out

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Pre-process several frames into one float32 (N, 3, H, W) array, in order."""
        if len(images) == 1:
            return self(images[0])
        return np.concatenate([self(image) for image in images])
