"""A prompt in frame pixels to the prompt decoder's input tensors.

Prompts are in frame pixels (x to the right, y down, from the frame's top-left corner) and are
mapped to the model's input size, which the frame is resized to before encoding, in the
conventions the model was trained with at that size: a click is the pixel it lands on (mapped
centre to centre), and a box is given by its edges, as a slice is (pixels ``xa..xb`` are
``x0 = xa``, ``x1 = xb + 1``), and reaches the decoder as its first and last input pixel.

The edge's segmenter and the server's instrument evidence feed the same decoder graph, so both
build its inputs here.
"""

from __future__ import annotations

import math

import numpy as np

from orstream.errors import OrstreamError, quoted
from orstream.package.card import DECODER_INPUTS, IMAGE_EMBEDDINGS
from orstream.package.loading import ModelPackage
from orstream.package.preprocess import image_spec
from orstream.segmentation.prompts import Prompt

PAD_LABEL = -1.0
"""Point label of an unused point slot of the decoder."""


class PromptError(ValueError):
    """A prompt the model cannot take; the message is one clear line for the user."""


class PromptTensors:
    """The decoder inputs of prompts for one interactive segmentation package.

    Args:
        package: a loaded interactive segmentation package (its card has a decoder section).

    Raises:
        OrstreamError: the package has no prompt decoder.
    """

    def __init__(self, package: ModelPackage) -> None:
        spec = package.card.decoder
        if spec is None:
            raise OrstreamError(
                f"model package {package.root} ({package.card.task}) has no prompt decoder; "
                "it is not an interactive segmentation package"
            )
        resize = image_spec(package.card).resize
        assert resize is not None  # the card validates image inputs as a whole
        self.input_size = (resize.height, resize.width)
        """(H, W) of the encoder's input, which prompts are scaled to."""
        self.point_slots = spec.point_slots
        self.mask_size = spec.mask_size
        self.embedding_shape = spec.graph_inputs()[IMAGE_EMBEDDINGS][0]
        self._text_dim = spec.text_dim
        self._text_rows = {label.name: label.index for label in package.card.labels[spec.labels]}
        self._text_prompts = package.text_prompts()

    def __call__(
        self, embedding: np.ndarray, frame: tuple[int, int], prompt: Prompt
    ) -> dict[str, np.ndarray]:
        """The decoder's inputs, in graph order, for ``prompt`` on a frame of ``frame``
        (width, height) pixels whose image embedding [1, E, h, w] is ``embedding``.

        Raises:
            PromptError: no prompt at all; a point outside the frame; point labels not 0/1 or
                not one per point; more points than the decoder's slots; an empty, inverted or
                outside box; a class name the package does not know; mask logits of the wrong
                shape.
        """
        if not (prompt.points or prompt.box is not None or prompt.text is not None) and (
            prompt.mask_logits is None
        ):
            raise PromptError("empty prompt: give points, a box, a class name or mask logits")
        height, width = self.input_size
        scale = np.array([width / frame[0], height / frame[1]], dtype=np.float64)
        points = np.zeros((1, self.point_slots, 2), dtype=np.float32)
        labels = np.full((1, self.point_slots), PAD_LABEL, dtype=np.float32)
        clicks = self._points(prompt, frame)
        if clicks:
            # pixel centre to pixel centre
            points[0, : len(clicks)] = (np.array(clicks) + 0.5) * scale - 0.5
            labels[0, : len(clicks)] = prompt.point_labels
        boxes = np.zeros((1, 4), dtype=np.float32)
        if prompt.box is not None:
            x0, y0, x1, y1 = _box(prompt.box, frame)
            # edges to the first and last input pixel inside, as the model was trained on
            first = np.array([x0, y0]) * scale
            last = np.maximum(np.array([x1, y1]) * scale - 1, first)
            boxes[0] = (*first, *last)
        text = np.zeros((1, self._text_dim), dtype=np.float32)
        if prompt.text is not None:
            text[0] = self._text_prompts[self._text_row(prompt.text)]
        mask = np.zeros((1, 1, *self.mask_size), dtype=np.float32)
        if prompt.mask_logits is not None:
            mask[...] = self._mask(prompt.mask_logits)
        inputs = {
            IMAGE_EMBEDDINGS: embedding,
            "points": points,
            "point_labels": labels,
            "boxes": boxes,
            "mask_prompt": mask,
            "text_embedding": text,
            "has_box": _flag(prompt.box is not None),
            "has_mask": _flag(prompt.mask_logits is not None),
            "has_text": _flag(prompt.text is not None),
        }
        return {name: inputs[name] for name in DECODER_INPUTS}

    def _points(self, prompt: Prompt, frame: tuple[int, int]) -> list[tuple[float, float]]:
        points, labels = prompt.points, prompt.point_labels
        if len(points) != len(labels):
            raise PromptError(
                f"give one label per point: {len(points)} point(s), {len(labels)} label(s)"
            )
        if len(points) > self.point_slots:
            raise PromptError(
                f"{len(points)} points given; this model takes at most {self.point_slots}"
            )
        wrong = [label for label in labels if label not in (0, 1)]
        if wrong:
            raise PromptError(f"point labels must be 1 (positive) or 0 (negative), got {wrong}")
        clicks = []
        for point in points:
            if len(point) != 2:
                raise PromptError(f"a point is (x, y), got {tuple(point)}")
            x, y = float(point[0]), float(point[1])
            if not (0 <= x < frame[0] and 0 <= y < frame[1]):
                raise PromptError(
                    f"point ({x:g}, {y:g}) is outside the {frame[0]}x{frame[1]} frame"
                )
            clicks.append((x, y))
        return clicks

    def _text_row(self, name: str) -> int:
        row = self._text_rows.get(name)
        if row is None:
            raise PromptError(
                f"unknown class {quoted(name)}; this model knows: {', '.join(self._text_rows)}"
            )
        return row

    def _mask(self, logits: np.ndarray) -> np.ndarray:
        expected = (1, 1, *self.mask_size)
        shape = getattr(logits, "shape", None)
        if shape != expected:
            raise PromptError(
                f"mask logits must be {list(expected)} (a previous prediction's "
                f"low_res_logits), got {list(shape) if shape is not None else type(logits)}"
            )
        return np.asarray(logits, dtype=np.float32)


def best_candidates(masks: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each prompt's candidate with the highest predicted IoU, whatever the prompt: of the
    decoder's masks [N, K, H/4, W/4] and iou [N, K], logits [N, H/4, W/4] float32 and iou [N]."""
    best = np.argmax(iou, axis=1)
    rows = np.arange(len(iou))
    return masks[rows, best].astype(np.float32, copy=False), iou[rows, best]


def _box(box: tuple[float, ...], frame: tuple[int, int]) -> tuple[float, float, float, float]:
    if len(box) != 4:
        raise PromptError(f"a box is (x0, y0, x1, y1), got {tuple(box)}")
    x0, y0, x1, y1 = (float(v) for v in box)
    shown = f"({x0:g}, {y0:g}, {x1:g}, {y1:g})"
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise PromptError(f"box {shown} has a coordinate that is not a number")
    if not (x0 < x1 and y0 < y1):
        raise PromptError(f"box {shown} is empty or inverted: needs x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > frame[0] or y1 > frame[1]:
        raise PromptError(f"box {shown} reaches outside the {frame[0]}x{frame[1]} frame")
    return x0, y0, x1, y1


def _flag(on: bool) -> np.ndarray:
    return np.array([1.0 if on else 0.0], dtype=np.float32)
