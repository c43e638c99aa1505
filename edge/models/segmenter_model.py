"""An interactive segmentation package on the edge: masks from clicks, boxes and class names.

The image encoder (``model.onnx``) runs once per frame (:meth:`SegmenterModel.embed`); the prompt
decoder (``decoder.onnx``) runs once per prompt on that embedding (:meth:`SegmenterModel.segment`),
so a user refining a mask pays only for the decoder.

Prompts are in frame pixels, mapped to the model's input size as
:mod:`orstream.segmentation.prompt_tensors` says.

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
from orstream.errors import OrstreamError
from orstream.package.card import IMAGE_EMBEDDINGS
from orstream.package.loading import ModelPackage
from orstream.package.preprocess import image_spec, preprocessor_for
from orstream.segmentation.prompt_tensors import PromptTensors, best_candidates
from orstream.segmentation.prompts import Prompt


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
        self.prompts = PromptTensors(package)
        """Decoder inputs of a prompt (raises OrstreamError without a decoder section)."""
        self.package = package
        self.encoder = encoder
        self.decoder = decoder
        self.preprocess = preprocessor_for(encoder, image_spec(card))
        self.label = f"{card.name}@{card.version}"
        self.rate_hz = card.clip.fps
        assert card.decoder is not None  # PromptTensors checked it
        labels = card.labels[card.decoder.labels]
        self.classes: dict[str, int] = {label.name: label.code for label in labels}
        self.point_slots = self.prompts.point_slots
        self.mask_size = self.prompts.mask_size
        self._embedding_shape = self.prompts.embedding_shape

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
            best_logits, best_scores = best_candidates(outputs["masks"], outputs["iou"])
            logits.append(best_logits)
            scores.append(best_scores)
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
        graph order.

        Raises:
            PromptError: as :meth:`segment`.
        """
        return self.prompts(embedding.array, (embedding.width, embedding.height), prompt)
