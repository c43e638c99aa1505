"""An interactive segmentation package on the edge: masks from clicks, boxes and class names.

The image encoder (``model.onnx``) runs once per frame (:meth:`SegmenterModel.embed`); the prompt
decoder (``decoder.onnx``) runs once per prompt on that embedding (:meth:`SegmenterModel.segment`),
so a user refining a mask pays only for the decoder.

Prompts are in frame pixels (x to the right, y down, from the frame's top-left corner) and are
mapped to the model's input size, which the frame is resized to before encoding, in the
conventions the model was trained with at that size: a click is the pixel it lands on (mapped
centre to centre), and a box is given by its edges, as a slice is (pixels ``xa..xb`` are
``x0 = xa``, ``x1 = xb + 1``), and reaches the decoder as its first and last input pixel.

The decoder gives 3 candidate masks at 1/4 of the input size with a predicted IoU each; the best
candidate by predicted IoU is kept, whatever the prompt, its logits are upscaled (bilinear) to
the input size and then to the frame's size, and the mask is where they are above 0. With a box
the mask ends at the box: a box says the whole object is inside it, and the coarse logits of a
thin instrument otherwise spill past its edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from orstream.edge.backends import CPU_BACKENDS, Backend, create_backend
from orstream.edge.models.preprocess import image_spec, preprocessor_for
from orstream.errors import OrstreamError, quoted
from orstream.package.card import DECODER_INPUTS, IMAGE_EMBEDDINGS
from orstream.package.loading import ModelPackage
from orstream.prompts import Prompt

"""Backends :meth:`SegmenterModel.load` tries when not told: ONNX Runtime runs everywhere."""
PAD_LABEL = -1.0
"""Point label of an unused point slot of the decoder."""


class PromptError(ValueError):
    """A prompt the model cannot take; the message is one clear line for the user."""


@dataclass(frozen=True)
class ImageEmbedding:
    """The encoder's output for one frame, and that frame's size."""

    array: np.ndarray
    """[1, E, h, w] float32."""
    height: int
    width: int


@dataclass(frozen=True)
class MaskPrediction:
    """The best candidate mask for a prompt."""

    mask: np.ndarray
    """(height, width) bool at the frame's full size."""
    score: float
    """The decoder's predicted IoU of this mask."""
    low_res_logits: np.ndarray
    """[1, 1, H/4, W/4] float32 logits of this candidate: ``Prompt.mask_logits`` next round."""


class SegmenterModel:
    """The interactive segmenter of one package: an encoder and a decoder backend.

    Args:
        package: a loaded interactive segmentation package (its card has a decoder section).
        encoder: a backend with the package's ``model.onnx`` loaded.
        decoder: a backend with the package's prompt decoder loaded.

    Raises:
        OrstreamError: the package has no prompt decoder.
    """

    def __init__(self, package: ModelPackage, encoder: Backend, decoder: Backend) -> None:
        card = package.card
        spec = card.decoder
        if spec is None:
            raise OrstreamError(
                f"model package {package.root} ({card.task}) has no prompt decoder; "
                "it is not an interactive segmentation package"
            )
        self.package = package
        self.encoder = encoder
        self.decoder = decoder
        self.preprocess = preprocessor_for(encoder, image_spec(card))
        self.label = f"{card.name}@{card.version}"
        self.rate_hz = card.clip.fps
        labels = card.labels[spec.labels]
        self.classes: dict[str, int] = {label.name: label.code for label in labels}
        self._text_rows = {label.name: label.index for label in labels}
        self._text_prompts = package.text_prompts()
        self.point_slots = spec.point_slots
        self.mask_size = spec.mask_size
        self._embedding_shape = spec.graph_inputs()[IMAGE_EMBEDDINGS][0]
        self._text_dim = spec.text_dim

    @classmethod
    def load(
        cls,
        package: ModelPackage,
        device: str = "cpu",
        backends: Sequence[str] = CPU_BACKENDS,
    ) -> SegmenterModel:
        """Both graphs of ``package``, each on the first backend of ``backends`` that runs it
        here and passes its golden check (:func:`~orstream.edge.backends.create_backend`).

        Args:
            package: an interactive segmentation package.
            device: the device of preference entries that name none.
            backends: preference entries, "name" or "name:device", most wanted first.

        Raises:
            OrstreamError: the package has no decoder, or no backend can run a graph (every
                reason listed).
        """
        if package.card.decoder is None:
            raise OrstreamError(
                f"model package {package.root} ({package.card.task}) has no prompt decoder; "
                "it is not an interactive segmentation package"
            )
        encoder = create_backend(backends, package, device, graph="model")
        decoder = create_backend(backends, package, device, graph="decoder")
        return cls(package, encoder, decoder)

    @property
    def selection(self) -> str:
        """Which backends run the encoder and the decoder, and why (one line)."""
        encoder = getattr(self.encoder, "selection", self.encoder.label)
        decoder = getattr(self.decoder, "selection", self.decoder.label)
        return encoder if encoder == decoder else f"encoder {encoder}; decoder {decoder}"

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the model's input: frames are resized to it, prompts scaled to it."""
        return self.preprocess.size

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """Encode one RGB uint8 frame (height, width, 3) of any size.

        Raises:
            OrstreamError: ``image`` is not an RGB uint8 frame.
        """
        return self.embed_batch([image])[0]

    def embed_batch(self, images: Sequence[np.ndarray]) -> list[ImageEmbedding]:
        """Encode several frames (of any sizes), as few encoder calls as the encoder's batch
        allows: frames of several streams sampled together go through it at once.

        Raises:
            OrstreamError: an image is not an RGB uint8 frame.
        """
        embeddings: list[ImageEmbedding] = []
        step = self.encoder.max_batch
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            tensor = self.preprocess.batch(chunk)
            array = self.encoder.infer({self.preprocess.spec.name: tensor})[IMAGE_EMBEDDINGS]
            embeddings += [
                ImageEmbedding(
                    array=array[row : row + 1], height=image.shape[0], width=image.shape[1]
                )
                for row, image in enumerate(chunk)
            ]
        return embeddings

    def segment(self, embedding: ImageEmbedding, prompt: Prompt) -> MaskPrediction:
        """The best mask for ``prompt`` on the frame ``embedding`` came from.

        Raises:
            PromptError: no prompt at all; a point outside the frame; point labels not 0/1 or
                not one per point; more points than the decoder's slots; an empty, inverted or
                outside box; a class name the package does not know; mask logits of the wrong
                shape.
            OrstreamError: ``embedding`` is not of this model's encoder.
        """
        logits, scores = self.decode(embedding, [prompt])
        mask = self.frame_mask(logits[0], embedding)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            inside = np.zeros_like(mask)
            inside[math.floor(y0) : math.ceil(y1), math.floor(x0) : math.ceil(x1)] = True
            mask &= inside
        return MaskPrediction(
            mask=mask, score=float(scores[0]), low_res_logits=np.ascontiguousarray(logits[:1, None])
        )

    def decode(
        self, embedding: ImageEmbedding, prompts: Sequence[Prompt]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best candidate of each prompt on one frame, in as few decoder calls as the
        decoder's batch allows: logits [N, H/4, W/4] float32 and predicted IoU [N].

        Raises:
            PromptError, OrstreamError: as :meth:`segment`.
        """
        if embedding.array.shape != self._embedding_shape:
            raise OrstreamError(
                f"image embedding of shape {list(embedding.array.shape)} is not from this "
                f"model's encoder (expects {list(self._embedding_shape)})"
            )
        rows = [self.decoder_inputs(embedding, prompt) for prompt in prompts]
        logits, scores = [], []
        step = self.decoder.max_batch
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            feeds = {name: np.concatenate([row[name] for row in chunk]) for name in chunk[0]}
            outputs = self.decoder.infer(feeds)
            best = np.argmax(outputs["iou"], axis=1)
            picked = np.arange(len(chunk))
            logits.append(outputs["masks"][picked, best].astype(np.float32, copy=False))
            scores.append(outputs["iou"][picked, best])
        return np.concatenate(logits), np.concatenate(scores)

    def frame_mask(self, logits: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """The mask at the frame's size of one candidate's logits [H/4, W/4]: upscaled
        (bilinear) to the input size, then to the frame's, and kept where above 0."""
        height, width = self.input_size
        upscaled = cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)
        if (height, width) != (embedding.height, embedding.width):
            upscaled = cv2.resize(
                upscaled, (embedding.width, embedding.height), interpolation=cv2.INTER_LINEAR
            )
        return np.asarray(upscaled > 0)

    def decoder_inputs(self, embedding: ImageEmbedding, prompt: Prompt) -> dict[str, np.ndarray]:
        """The prompt decoder's inputs for ``prompt`` on the frame ``embedding`` came from, in
        graph order (module docstring: scaling).

        Raises:
            PromptError: as :meth:`segment`.
        """
        frame = (embedding.width, embedding.height)
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
            x0, y0, x1, y1 = self._box(prompt.box, frame)
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
            IMAGE_EMBEDDINGS: embedding.array,
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

    @staticmethod
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


def _flag(on: bool) -> np.ndarray:
    return np.array([1.0 if on else 0.0], dtype=np.float32)
