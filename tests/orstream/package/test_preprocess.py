"""Card-driven frame pre-processing against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from image_specs import MEAN, STD, image_spec

from orstream.errors import OrstreamError
from orstream.package.card import InputSpec
from orstream.package.preprocess import ImagePreprocessor


def _reference(resized: np.ndarray) -> np.ndarray:
    """The textbook definition: scale to 0..1, subtract mean, divide by std, HWC -> NCHW."""
    x = resized.astype(np.float64) / 255.0
    x = (x - np.array(MEAN)) / np.array(STD)
    return x.transpose(2, 0, 1)[np.newaxis].astype(np.float32)


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_frame_at_input_size_is_only_normalised(frame: np.ndarray) -> None:
    out = ImagePreprocessor(image_spec(48, 64, "area"))(frame)
    assert out.shape == (1, 3, 48, 64)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out, _reference(frame), rtol=0, atol=2e-6)


def test_area_downscale_by_an_integer_factor_is_the_block_mean(frame: np.ndarray) -> None:
    out = ImagePreprocessor(image_spec(12, 16, "area"))(frame)
    block_mean = frame.astype(np.float64).reshape(12, 4, 16, 4, 3).mean(axis=(1, 3))
    # cv2 rounds the block mean to uint8 before normalising: half a grey level at most.
    tolerance = 0.5 / 255.0 / min(STD) + 1e-5
    np.testing.assert_allclose(out, _reference(block_mean), rtol=0, atol=tolerance)


def test_nearest_resize_picks_source_pixels(frame: np.ndarray) -> None:
    out = ImagePreprocessor(image_spec(24, 32, "nearest"))(frame)
    np.testing.assert_allclose(out, _reference(frame[::2, ::2]), rtol=0, atol=2e-6)


def test_upscale_keeps_constant_colour() -> None:
    colour = np.array([200, 30, 90], dtype=np.uint8)
    frame = np.broadcast_to(colour, (5, 7, 3)).copy()
    out = ImagePreprocessor(image_spec(20, 28, "cubic"))(frame)
    expected = (colour / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(
        out[0], np.broadcast_to(expected[:, None, None], (3, 20, 28)), rtol=0, atol=2e-6
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        [[0, 0, 0]],
    ],
)
def test_frames_of_the_wrong_kind_are_refused(bad: object) -> None:
    with pytest.raises(OrstreamError, match="expected"):
        ImagePreprocessor(image_spec(8, 8, "area"))(bad)  # type: ignore[arg-type]


def test_non_image_input_has_no_preprocessor() -> None:
    spec = InputSpec(name="tokens", shape=(1, 16), dtype="int64")
    with pytest.raises(OrstreamError, match="not an image input"):
        ImagePreprocessor(spec)
