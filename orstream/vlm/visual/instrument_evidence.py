"""The instruments a frame shows, as one visual token: what the edge's live masks see.

The segmenter's image embedding pooled to a few cells keeps little of which instrument is where
(a probe on those tokens gets the exact instrument set of a held-out second right 0.40 of the
time), while the edge's find-and-name pipeline gets it right 0.84 (276 in-patient seconds of
held-out phantom cases). So each frame gets one more token: the clicks of
:mod:`orstream.segmentation.instrument_finding` on the segmenter's decoder find the objects, the
instrument classifier gives each object's tip crop its class probabilities, and the token holds,
per class, the highest probability any object of the frame has for it (no object: zeros). The
language model learns its own thresholds from that, and counts the classes it believes in.

Both graphs run on ONNX Runtime from their packages, checked against their golden references
(:func:`~orstream.package.onnx_session.open_session`), so training and the server tier make the
same tokens without the edge.
"""

from __future__ import annotations

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import INSTRUMENT_CLASSIFICATION
from orstream.package.loading import ModelPackage
from orstream.package.onnx_session import open_session
from orstream.package.preprocess import ImagePreprocessor
from orstream.segmentation.instrument_finding import (
    MIN_SCORE,
    distinct_objects,
    grid_clicks,
    tip_crops,
)
from orstream.segmentation.prompt_tensors import PromptTensors, best_candidates
from orstream.segmentation.prompts import Prompt


class InstrumentEvidence:
    """A frame and its image embedding in, per-class instrument probabilities out.

    Args:
        segmenter: the interactive segmentation package whose encoder made the embedding.
        classifier: an instrument classification package.
        threads: ONNX Runtime threads per graph.

    Raises:
        OrstreamError: ``classifier`` is not an instrument classifier, or a graph cannot be
            opened or does not reproduce its golden reference.
    """

    def __init__(self, segmenter: ModelPackage, classifier: ModelPackage, threads: int = 1) -> None:
        card = classifier.card
        if card.task != INSTRUMENT_CLASSIFICATION or card.outputs[0].labels is None:
            raise OrstreamError(
                f"model package {classifier.root} is a {card.task} package, not "
                f"{INSTRUMENT_CLASSIFICATION}"
            )
        self.prompts = PromptTensors(segmenter)
        self.sha256 = card.hashes.model_onnx
        """The classifier graph's content hash: what the tokens depend on besides the
        segmenter."""
        self.classes = len(card.labels[card.outputs[0].labels])
        self._decoder = open_session(segmenter, "decoder", threads)
        self._classifier = open_session(classifier, "model", threads)
        self._crops = ImagePreprocessor.from_card(card)
        self._output = card.outputs[0].name

    def __call__(self, image: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """Per-class probabilities [classes] float32 of the RGB uint8 ``image`` at the
        segmenter's input size, whose image embedding [1, E, h, w] is ``embedding``."""
        height, width = self.prompts.input_size
        if image.shape[:2] != (height, width):
            raise OrstreamError(
                f"instrument evidence takes frames of {width}x{height} (the segmenter's input), "
                f"got {image.shape[1]}x{image.shape[0]}"
            )
        evidence = np.zeros(self.classes, np.float32)
        points = grid_clicks(image)
        if not points:
            return evidence
        rows = [
            self.prompts(embedding, (width, height), Prompt(points=(point,), point_labels=(1,)))
            for point in points
        ]
        feeds = {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}
        logits, scores = best_candidates(*self._decoder.run(["masks", "iou"], feeds))
        found = distinct_objects(logits, scores, (height, width), MIN_SCORE)
        crops, _ = tip_crops(image, found)
        if not crops:
            return evidence
        classes = self._classifier.run(
            [self._output], {self._crops.spec.name: self._crops.batch(crops)}
        )[0]
        shifted = np.exp(classes - classes.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        return probabilities.max(axis=0).astype(np.float32)
