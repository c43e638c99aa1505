"""Card-driven pre-processing in torch, on the device that runs the model.

:class:`TorchImagePreprocessor` does what
:class:`~orstream.package.preprocess.ImagePreprocessor` does with OpenCV — resize an RGB
uint8 frame to the card's input size with the card's interpolation, scale, normalise per
channel, lay out as [1, 3, H, W] — on a torch device: the frame is copied once (through pinned
memory on CUDA) and everything after runs there.

The resize reproduces OpenCV's ``cv2.resize`` on uint8 frames rather than torch's own
interpolation, whose sampling differs (torch's "area" is an adaptive average over whole pixels,
OpenCV weighs the pixels a cell covers in part). Per axis, OpenCV's sampling is a short list of
taps, source index and weight per output pixel, computed here once per frame size with
OpenCV's formulas:

- area, shrinking both axes: each output pixel averages the source cell it covers, partly
  covered pixels weighted by the part (OpenCV's ``computeResizeAreaTab``); the float result is
  rounded to uint8 (halves up for an exact 2x shrink, as OpenCV's integer fast path does;
  to even otherwise);
- linear, and area when either axis grows: two taps with half-pixel centres (area's weights
  follow the cell edges instead), replicated border; OpenCV computes these in fixed point
  (weights in 1/2048, the vertical pass on sums shifted right by 4 and 16 bits, then rounded),
  which is reproduced here in int32 arithmetic;
- cubic: four taps, Keys' kernel with a = -0.75, replicated border, float, rounded to even;
- nearest: the source pixel ``floor(x * src / dst)``.

Measured against OpenCV 5.0 (tests/edge/models/test_gpu_preprocess.py) on blurred random frames from
1080p, 720p, 480p and small sizes to 112x192 and 144x256, shrinking and growing: nearest and
area give OpenCV's uint8 pixels exactly, linear exactly when shrinking and one grey level apart
at under 0.3% of pixels when growing, cubic one grey level apart at under 0.03% of pixels. One
grey level is ``1 / (scale * std)`` after normalising (0.017 for ImageNet's std).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from orstream.package.card import InputSpec
from orstream.package.preprocess import check_frame, normalisation

FIXED_POINT_SCALE = 2048
"""OpenCV's INTER_RESIZE_COEF_SCALE: interpolation weights of uint8 resizes in fixed point."""
_CUBIC_A = -0.75


@dataclass(frozen=True)
class AxisTaps:
    """How one axis resizes: output pixel j is ``sum_k weights[k, j] * source[indices[k, j]]``.

    Attributes:
        indices: int64 [K, dst] source indices (clamped to the axis: replicated border).
        weights: float64 [K, dst] weights (0 for taps an output pixel does not use).
    """

    indices: np.ndarray
    weights: np.ndarray


def _scale(src: int, dst: int) -> float:
    """Source pixels per output pixel as OpenCV computes it: the inverse of dst / src, which
    can differ from src / dst in the last bit and move a floor() by one at exact multiples."""
    return 1.0 / (dst / src)


def _cubic_weights(fx: np.ndarray) -> np.ndarray:
    """OpenCV's ``interpolateCubic``: the 4 weights of offset ``fx`` in [0, 1)."""
    a = _CUBIC_A
    c0 = ((a * (fx + 1) - 5 * a) * (fx + 1) + 8 * a) * (fx + 1) - 4 * a
    c1 = ((a + 2) * fx - (a + 3)) * fx * fx + 1
    c2 = ((a + 2) * (1 - fx) - (a + 3)) * (1 - fx) * (1 - fx) + 1
    return np.stack([c0, c1, c2, 1 - c0 - c1 - c2])


def _two_or_four_taps(src: int, dst: int, interpolation: str) -> AxisTaps:
    """OpenCV's general resize path (linear, cubic, and area growing) along one axis."""
    scale = _scale(src, dst)
    out = np.arange(dst, dtype=np.float64)
    if interpolation == "area":
        start = np.floor(out * scale).astype(np.int64)
        fx = ((out + 1) - (start + 1) * (dst / src)).astype(np.float32)
        fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx)).astype(np.float32)
    else:
        position = ((out + 0.5) * scale - 0.5).astype(np.float32)
        start = np.floor(position).astype(np.int64)
        fx = (position - start).astype(np.float32)
    if interpolation == "cubic":
        weights = _cubic_weights(fx).astype(np.float32)
        first = start - 1
    else:
        # Before the first and past the last source pixel the edge pixel is taken whole.
        outside = (start < 0) | (start >= src - 1)
        fx = np.where(outside, np.float32(0), fx)
        first = np.clip(start, 0, src - 1)
        weights = np.stack([1 - fx, fx]).astype(np.float32)
    indices = np.clip(first[None] + np.arange(len(weights))[:, None], 0, src - 1)
    return AxisTaps(indices=indices, weights=weights.astype(np.float64))


def _area_taps(src: int, dst: int) -> AxisTaps:
    """OpenCV's ``computeResizeAreaTab``: the source cell of each output pixel (src >= dst)."""
    scale = _scale(src, dst)
    cells: list[list[tuple[int, float]]] = []
    for j in range(dst):
        begin = j * scale
        end = begin + scale
        width = min(scale, src - begin)
        first = math.ceil(begin)
        last = min(math.floor(end), src - 1)
        first = min(first, last)
        cell = []
        if first - begin > 1e-3:
            cell.append((first - 1, float(np.float32((first - begin) / width))))
        cell += [(i, float(np.float32(1.0 / width))) for i in range(first, last)]
        if end - last > 1e-3:
            cell.append((last, float(np.float32(min(end - last, 1.0, width) / width))))
        cells.append(cell)
    taps = max(len(cell) for cell in cells)
    indices = np.zeros((taps, dst), dtype=np.int64)
    weights = np.zeros((taps, dst), dtype=np.float64)
    for j, cell in enumerate(cells):
        for k, (index, weight) in enumerate(cell):
            indices[k, j], weights[k, j] = index, weight
    return AxisTaps(indices=indices, weights=weights)


def axis_taps(src: int, dst: int, interpolation: str, area_shrinks: bool) -> AxisTaps:
    """The taps of one axis as ``cv2.resize`` samples it.

    Args:
        src: source length.
        dst: output length.
        interpolation: "area", "linear", "cubic" or "nearest".
        area_shrinks: OpenCV averages cells only when neither axis grows; otherwise "area"
            takes its two-tap path on both axes.
    """
    if interpolation == "nearest":
        index = np.minimum(np.floor(np.arange(dst) * _scale(src, dst)).astype(np.int64), src - 1)
        return AxisTaps(indices=index[None], weights=np.ones((1, dst)))
    if interpolation == "area" and area_shrinks:
        return _area_taps(src, dst)
    if interpolation not in ("area", "linear", "cubic"):
        raise ValueError(f"unknown interpolation {interpolation!r}")
    return _two_or_four_taps(src, dst, interpolation)


@dataclass(frozen=True)
class _Plan:
    """One frame size's resize on the device."""

    rows: torch.Tensor
    """int64 [K, H]"""
    row_weights: torch.Tensor
    """[K, H, 1, 1], float32, or int32 fixed point"""
    columns: torch.Tensor
    """int64 [K, W]"""
    column_weights: torch.Tensor
    """[K, 1, W, 1], float32, or int32 fixed point"""
    fixed_point: bool
    half_up: bool
    """Round halves up (OpenCV's integer 2x area path) rather than to even."""


def _gather(x: torch.Tensor, dim: int, indices: torch.Tensor) -> torch.Tensor:
    """``x`` sampled at ``indices`` [K, n] along ``dim``, the K taps first."""
    taps, count = indices.shape
    picked = x.index_select(dim, indices.reshape(-1))
    shape = list(x.shape)
    shape[dim : dim + 1] = [taps, count]
    return picked.reshape(shape).movedim(dim, 0)


class TorchImagePreprocessor:
    """Turns frames into one image input of a model package, as torch tensors on ``device``.

    Args:
        spec: the card's image input (``layout`` set).
        device: where the tensor is made ("cpu", "cuda", "cuda:N" or a torch.device).
        dtype: the tensor's dtype (the model's compute dtype).
        stream: on CUDA, the stream all the work goes to (the torch backend's own, so that its
            tensor is ready where the backend reads it); None: the caller's current stream.

    Raises:
        OrstreamError: ``spec`` is not an image input.
    """

    def __init__(
        self,
        spec: InputSpec,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        stream: torch.cuda.Stream | None = None,
    ) -> None:
        gain, bias = normalisation(spec)
        assert spec.resize is not None  # normalisation() checked it is an image input
        self.spec = spec
        self.size = (spec.resize.height, spec.resize.width)
        self.device = torch.device(device)
        self.dtype = dtype
        self.interpolation = spec.resize.interpolation
        self.stream = stream
        self._gain = torch.from_numpy(gain).reshape(3, 1, 1).to(self.device)
        self._bias = torch.from_numpy(bias).reshape(3, 1, 1).to(self.device)
        self._plans: dict[tuple[int, int], _Plan] = {}
        self._pinned: torch.Tensor | None = None
        self._copied: torch.cuda.Event | None = None

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """Pre-process one frame.

        Args:
            image: RGB uint8 array of shape (height, width, 3).

        Returns:
            [1, 3, H, W] contiguous tensor on the device, of the dtype given (made on
            ``stream`` when one was given: readers on another stream wait for it first).

        Raises:
            OrstreamError: ``image`` is not an RGB uint8 frame.
        """
        return self.batch([image])

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Pre-process several frames into one [N, 3, H, W] tensor on the device, in order.

        Frames of one size go up in one copy and are resized together; frames of several
        sizes (streams from different cameras) are done a size at a time.

        Raises:
            OrstreamError: an image is not an RGB uint8 frame.
        """
        for image in images:
            check_frame(image)
        if self.stream is None:
            return self._preprocess(images)
        with torch.cuda.stream(self.stream):
            return self._preprocess(images)

    def _preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        if len({image.shape for image in images}) > 1:
            return torch.cat([self._preprocess([image]) for image in images])
        frames = self._upload(images)
        same = tuple(images[0].shape[:2]) == self.size
        pixels = frames.float() if same else self._resize(frames)
        planar = pixels.permute(0, 3, 1, 2)
        out = torch.addcmul(self._bias, planar, self._gain)
        return out.to(self.dtype).contiguous()

    def _upload(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The frames on the device, uint8 (N, height, width, 3), in one copy."""
        if self.device.type != "cuda":
            return torch.from_numpy(np.stack(images)).to(self.device)
        shape = (len(images), *images[0].shape)
        if self._copied is not None:
            # The previous copy out of the pinned buffer must be done before it is overwritten.
            self._copied.synchronize()
        if self._pinned is None or tuple(self._pinned.shape) != shape:
            self._pinned = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        staging = self._pinned.numpy()
        for row, image in enumerate(images):
            staging[row] = image
        frames = self._pinned.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record(torch.cuda.current_stream(self.device))
        return frames

    def _plan(self, height: int, width: int) -> _Plan:
        plan = self._plans.get((height, width))
        if plan is not None:
            return plan
        out_height, out_width = self.size
        shrinks = height >= out_height and width >= out_width
        rows = axis_taps(height, out_height, self.interpolation, shrinks)
        columns = axis_taps(width, out_width, self.interpolation, shrinks)
        fixed_point = self.interpolation == "linear" or (
            self.interpolation == "area" and not shrinks
        )

        def weights(taps: AxisTaps) -> torch.Tensor:
            if fixed_point:
                quantised = np.rint(taps.weights.astype(np.float32) * FIXED_POINT_SCALE)
                return torch.from_numpy(quantised.astype(np.int32))
            return torch.from_numpy(taps.weights.astype(np.float32))

        plan = _Plan(
            rows=torch.from_numpy(rows.indices).to(self.device),
            row_weights=weights(rows)[:, :, None, None].to(self.device),
            columns=torch.from_numpy(columns.indices).to(self.device),
            column_weights=weights(columns)[:, None, :, None].to(self.device),
            fixed_point=fixed_point,
            half_up=self.interpolation == "area"
            and (height, width) == (2 * out_height, 2 * out_width),
        )
        self._plans[(height, width)] = plan
        return plan

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, h, w, 3) -> float32 (N, H, W, 3) holding whole grey levels, as OpenCV's
        uint8 resize gives for each frame."""
        plan = self._plan(frames.shape[1], frames.shape[2])
        column_weights, row_weights = plan.column_weights[:, None], plan.row_weights[:, None]
        if plan.fixed_point:
            # OpenCV's uint8 linear resize: exact integer horizontal sums, then the vertical
            # pass of its vectorised kernel, ((w * (S >> 4)) >> 16) summed, + 2, >> 2.
            horizontal = (_gather(frames, 2, plan.columns).int() * column_weights).sum(0)
            taps = _gather(horizontal, 1, plan.rows)
            vertical = ((row_weights * (taps >> 4)) >> 16).sum(0)
            return ((vertical + 2) >> 2).clamp(0, 255).float()
        horizontal = (_gather(frames, 2, plan.columns).float() * column_weights).sum(0)
        resized = (_gather(horizontal, 1, plan.rows) * row_weights).sum(0)
        rounded = torch.floor(resized + 0.5) if plan.half_up else torch.round(resized)
        return rounded.clamp(0, 255)
