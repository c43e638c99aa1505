"""The torch pre-processor against OpenCV's (ImagePreprocessor): the same pixels from every
interpolation, shrinking and growing, the same refusals, and on the GPU the same as on the CPU."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from image_specs import STD, image_spec

from orstream.edge.models.gpu_preprocess import TorchImagePreprocessor, axis_taps
from orstream.errors import OrstreamError
from orstream.package.card import InputSpec
from orstream.package.preprocess import ImagePreprocessor, preprocessor_for

GREY_LEVEL = 1.0 / (255.0 * min(STD))
"""One uint8 grey level after normalising, on the channel where it is largest."""
FRAME_SIZES = [(720, 1280), (480, 640), (448, 768), (224, 384), (257, 513), (100, 150), (113, 191)]
INPUT_SIZES = [(112, 192), (144, 256)]
SHARE_OFF_BY_ONE = {"nearest": 0.0, "area": 0.0, "linear": 0.005, "cubic": 0.001}
"""Largest share of values one grey level off OpenCV. Measured: none for nearest and area; for
linear none when shrinking and up to 0.27% when growing (OpenCV's vector kernel rounds the
edge columns in another order); for cubic up to 0.024% (float sums in another order)."""

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Blurred noise: detail at every scale, yet smooth as video is."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


def _compare(reference: np.ndarray, actual: np.ndarray, interpolation: str) -> None:
    assert actual.shape == reference.shape
    levels = np.abs(actual.astype(np.float64) - reference) / GREY_LEVEL
    assert levels.max() <= 1.0 + 1e-3
    assert (levels > 0.5).mean() <= SHARE_OFF_BY_ONE[interpolation]


@pytest.mark.parametrize("interpolation", ["area", "linear", "cubic", "nearest"])
@pytest.mark.parametrize("input_size", INPUT_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_same_pixels_as_opencv(interpolation: str, input_size: tuple[int, int]) -> None:
    spec = image_spec(*input_size, interpolation)
    opencv = ImagePreprocessor(spec)
    torch_preprocess = TorchImagePreprocessor(spec, "cpu")
    for seed, size in enumerate(FRAME_SIZES):
        frame = _frame(*size, seed=seed)
        _compare(opencv(frame), torch_preprocess(frame).numpy(), interpolation)


@pytest.mark.parametrize("interpolation", ["area", "linear", "cubic", "nearest"])
def test_every_step_after_the_upload_stays_on_the_device(interpolation: str) -> None:
    # torch's "meta" device stands in for a GPU: a step that made a tensor on the CPU, or read
    # a device value back, would fail here as on CUDA.
    spec = image_spec(144, 256, interpolation)
    preprocess = TorchImagePreprocessor(spec, "meta", torch.float16)
    for size in [(1080, 1920), (144, 256), (100, 150)]:
        out = preprocess(_frame(*size))
        assert out.device.type == "meta"
        assert out.shape == (1, 3, 144, 256) and out.dtype == torch.float16


def test_a_frame_at_input_size_is_only_normalised() -> None:
    spec = image_spec(112, 192, "area")
    frame = _frame(112, 192)
    out = TorchImagePreprocessor(spec, "cpu")(frame)
    assert out.shape == (1, 3, 112, 192) and out.dtype == torch.float32 and out.is_contiguous()
    np.testing.assert_allclose(out.numpy(), ImagePreprocessor(spec)(frame), rtol=0, atol=2e-6)


def test_the_tensor_comes_in_the_dtype_asked_for() -> None:
    spec = image_spec(112, 192, "linear")
    frame = _frame(480, 640)
    half = TorchImagePreprocessor(spec, "cpu", torch.float16)(frame)
    assert half.dtype == torch.float16 and half.shape == (1, 3, 112, 192)
    exact = ImagePreprocessor(spec)(frame)
    np.testing.assert_allclose(half.float().numpy(), exact, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("interpolation", ["area", "linear", "cubic"])
@pytest.mark.parametrize(("src", "dst"), [(1080, 112), (640, 256), (100, 144), (7, 7)])
def test_taps_of_an_axis_average_to_one(interpolation: str, src: int, dst: int) -> None:
    taps = axis_taps(src, dst, interpolation, area_shrinks=src >= dst)
    assert taps.indices.min() >= 0 and taps.indices.max() < src
    np.testing.assert_allclose(taps.weights.sum(axis=0), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        [[0, 0, 0]],
    ],
    ids=["float", "grey", "rgba", "list"],
)
def test_bad_frames_are_refused_as_opencv_refuses_them(bad: object) -> None:
    spec = image_spec(12, 16, "area")
    with pytest.raises(OrstreamError) as opencv:
        ImagePreprocessor(spec)(bad)  # type: ignore[arg-type]
    with pytest.raises(OrstreamError) as ours:
        TorchImagePreprocessor(spec, "cpu")(bad)  # type: ignore[arg-type]
    assert str(ours.value) == str(opencv.value)


def test_an_input_that_is_not_an_image_is_refused() -> None:
    spec = InputSpec(name="state", shape=(1, 4), dtype="float32")
    with pytest.raises(OrstreamError, match="not an image input"):
        TorchImagePreprocessor(spec, "cpu")


class _OffersOne:
    """A backend offering its own pre-processor (as the torch backend does on CUDA)."""

    def image_preprocessor(self, spec: InputSpec) -> TorchImagePreprocessor:
        return TorchImagePreprocessor(spec, "cpu")


class _OffersNone:
    def image_preprocessor(self, spec: InputSpec) -> None:
        return None


def test_preprocessor_for_prefers_the_backends_own() -> None:
    spec = image_spec(12, 16, "area")
    assert isinstance(preprocessor_for(_OffersOne(), spec), TorchImagePreprocessor)
    for backend in (_OffersNone(), object()):
        chosen = preprocessor_for(backend, spec)
        assert isinstance(chosen, ImagePreprocessor) and chosen.spec == spec


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("interpolation", ["area", "linear", "cubic", "nearest"])
def test_on_the_gpu_the_same_as_on_the_cpu(interpolation: str) -> None:
    spec = image_spec(144, 256, interpolation)
    on_cpu = TorchImagePreprocessor(spec, "cpu")
    on_gpu = TorchImagePreprocessor(spec, "cuda")
    opencv = ImagePreprocessor(spec)
    for seed, size in enumerate([(1080, 1920), (720, 1280), (144, 256), (100, 150)]):
        frame = _frame(*size, seed=seed)
        out = on_gpu(frame)
        assert out.device.type == "cuda" and out.shape == (1, 3, 144, 256)
        _compare(on_cpu(frame).numpy(), out.cpu().numpy(), interpolation)
        _compare(opencv(frame), out.cpu().numpy(), interpolation)


@cuda
@pytest.mark.gpu
def test_the_pinned_buffer_is_not_overwritten_while_a_frame_is_copied() -> None:
    spec = image_spec(112, 192, "area")
    gpu = TorchImagePreprocessor(spec, "cuda")
    frames = [_frame(720, 1280, seed=seed) for seed in range(4)]
    outputs = [gpu(frame) for frame in frames]  # no synchronisation between frames
    for frame, out in zip(frames, outputs, strict=True):
        np.testing.assert_allclose(
            out.cpu().numpy(), ImagePreprocessor(spec)(frame), rtol=0, atol=GREY_LEVEL + 1e-5
        )


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[cuda, pytest.mark.gpu])])
def test_a_batch_is_each_frame_preprocessed_alone(device: str) -> None:
    spec = image_spec(112, 192, "area")
    preprocess = TorchImagePreprocessor(spec, device)
    same = [_frame(720, 1280, seed=seed) for seed in range(3)]
    mixed = [*same, _frame(360, 640, seed=9), _frame(112, 192, seed=10)]
    for frames in (same, mixed):
        batch = preprocess.batch(frames)
        assert batch.shape == (len(frames), 3, 112, 192) and batch.device.type == device
        for row, frame in enumerate(frames):
            torch.testing.assert_close(batch[row : row + 1], preprocess(frame), rtol=0, atol=0)
            np.testing.assert_allclose(
                batch[row : row + 1].cpu().numpy(),
                ImagePreprocessor(spec)(frame),
                rtol=0,
                atol=GREY_LEVEL + 1e-5,
            )
