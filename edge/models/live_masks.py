"""Which masks the OR display shows for one segmented frame: each instrument once, named, or not
at all.

Prompting the segmenter with class names does not work live: its text prompts find the most
salient instrument whatever name they are given (on the demo's case the prompt of the right
class gave the best mask for only 15% of the instruments), and prompting the names a recognizer
guesses stacks several labels on one shaft. So instruments are found first and named second:

1. **Find.** Grid clicks go to the prompt decoder and give one mask per object
   (:mod:`orstream.segmentation.instrument_finding`). On the demo's case this finds 220 of its
   235 instruments (Dice above 0.5; mean Dice 0.845 were each given its right name).
2. **Name.** Each found object's tip crop goes to the instrument classifier; a mask it calls
   "no instrument" (tissue, the sella) or names with a probability below ``min_confidence`` is
   not shown: a missing mask is better than a wrong one on an OR display. Two masks given the
   same name are one object class and shown as one mask.
3. **Anatomy** classes are prompted by their names (the sella has no rival of its own kind).

Every pixel belongs to one mask at most: instruments are drawn over anatomy, and of two
instruments the more confident one keeps the pixels they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.errors import OrstreamError
from orstream.labels import ANATOMY, NO_INSTRUMENT
from orstream.results import SegmentMask
from orstream.segmentation.instrument_finding import (
    MIN_SCORE,
    Found,
    distinct_objects,
    grid_clicks,
    tip_crops,
)
from orstream.segmentation.mask_rle import encode_mask
from orstream.segmentation.mask_scores import mask_box
from orstream.segmentation.prompts import Prompt

TRACK_IOU = 0.3
"""A found object is the one of the stream's previous segmented frame it overlaps with this IoU."""
REMEMBERED = 0.5
"""Weight of an object's remembered class probabilities against the new frame's."""


@dataclass(frozen=True)
class Named:
    """A found object with the classifier's name for it."""

    found: Found
    code: int
    name: str
    confidence: float


class LiveMasks:
    """Which masks the OR display shows for one segmented frame (module docstring).

    Args:
        model: the loaded segmenter.
        classifier: names found instruments; without one no instrument mask is shown.
        classes: class names to show (None: every class the segmenter and classifier know).
        min_score: smallest predicted IoU of a mask that is kept.
        min_confidence: smallest classifier probability of an instrument's name that is shown.

    Raises:
        OrstreamError: a listed class neither the segmenter nor the classifier knows.
    """

    def __init__(
        self,
        model: SegmenterModel,
        classifier: InstrumentClassifier | None = None,
        classes: Sequence[str] | None = None,
        min_score: float = MIN_SCORE,
        min_confidence: float = 0.4,
    ) -> None:
        known = set(model.classes)
        if classifier is not None:
            names = zip(classifier.names, classifier.codes, strict=True)
            known |= {name for name, code in names if code != NO_INSTRUMENT}
        unknown = sorted(set(classes or ()) - known)
        if unknown:
            raise OrstreamError(
                f"segmentation classes {', '.join(unknown)} are not in {model.label} "
                f"(known: {', '.join(sorted(known))})"
            )
        self.model = model
        self.classifier = classifier
        self.shown = frozenset(classes) if classes is not None else frozenset(known)
        self.anatomy = tuple(
            n for n, c in model.classes.items() if c in ANATOMY and n in self.shown
        )
        self.min_score = min_score
        self.min_confidence = min_confidence
        self._remembered: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def forget(self, stream_id: str) -> None:
        """Drop what the stream's previous frames said (its video jumped)."""
        self._remembered.pop(stream_id, None)

    def __call__(
        self, image: np.ndarray, embedding: ImageEmbedding, stream_id: str = ""
    ) -> tuple[SegmentMask, ...]:
        """The masks shown for the frame ``image`` (RGB uint8) of stream ``stream_id`` whose
        embedding is given, most confident first."""
        named = self.named(image, self.found(image, embedding), stream_id)
        shown: list[tuple[int, str, float, np.ndarray]] = []
        taken = np.zeros((embedding.height, embedding.width), bool)
        by_code: dict[int, int] = {}
        for item in sorted(named, key=lambda n: -n.confidence):
            mask = self.model.frame_mask(item.found.logits, embedding) & ~taken
            taken |= mask
            if item.code in by_code:  # the same class twice: one mask of that class
                code, name, score, union = shown[by_code[item.code]]
                shown[by_code[item.code]] = (code, name, score, union | mask)
            else:
                by_code[item.code] = len(shown)
                shown.append((item.code, item.name, item.confidence, mask))
        if self.anatomy:
            logits, scores = self.model.decode(
                embedding, [Prompt(text=name) for name in self.anatomy]
            )
            for name, row, score in zip(self.anatomy, logits, scores, strict=True):
                if score >= self.min_score:
                    shown.append(
                        (
                            self.model.classes[name],
                            name,
                            float(score),
                            self.model.frame_mask(row, embedding) & ~taken,
                        )
                    )
        return tuple(
            SegmentMask(
                code=code, name=name, score=score, mask=encode_mask(mask), box=mask_box(mask)
            )
            for code, name, score, mask in shown
            if mask.any()
        )

    def found(self, image: np.ndarray, embedding: ImageEmbedding) -> list[Found]:
        """The objects the grid's clicks find, one mask each, best predicted IoU first."""
        points = grid_clicks(image)
        if not points:
            return []
        prompts = [Prompt(points=(point,), point_labels=(1,)) for point in points]
        logits, scores = self.model.decode(embedding, prompts)
        return distinct_objects(logits, scores, self.model.input_size, self.min_score)

    def named(self, image: np.ndarray, found: list[Found], stream_id: str = "") -> list[Named]:
        """The found objects the classifier names with confidence, as classes to show.

        An object found on the stream's previous segmented frame too (:data:`TRACK_IOU`) is named
        from both frames' probabilities (:data:`REMEMBERED`): one blurred or half-hidden frame
        does not rename an instrument or hide it.
        """
        crops, objects = tip_crops(image, found) if self.classifier is not None else ([], [])
        if self.classifier is None or not crops:
            self._remembered.pop(stream_id, None)
            return []
        probabilities = self._carried(stream_id, objects, self.classifier.probabilities(crops))
        named = []
        for item, row in zip(objects, probabilities, strict=True):
            index = int(np.argmax(row))
            code, name = int(self.classifier.codes[index]), self.classifier.names[index]
            if code != NO_INSTRUMENT and row[index] >= self.min_confidence and name in self.shown:
                named.append(Named(item, code, name, float(row[index])))
        return named

    def _carried(
        self, stream_id: str, objects: list[Found], probabilities: np.ndarray
    ) -> np.ndarray:
        """Each object's class probabilities blended with those of the object it continues on
        the stream's previous segmented frame, if any; remembered for the next frame."""
        remembered = self._remembered.get(stream_id, [])
        for row, item in enumerate(objects):
            best_iou, best = 0.0, None
            for mask, past in remembered:
                union = np.count_nonzero(mask | item.mask)
                iou = np.count_nonzero(mask & item.mask) / union if union else 0.0
                if iou > best_iou:
                    best_iou, best = iou, past
            if best is not None and best_iou >= TRACK_IOU:
                probabilities[row] = REMEMBERED * best + (1.0 - REMEMBERED) * probabilities[row]
        self._remembered[stream_id] = [
            (item.mask, row) for item, row in zip(objects, probabilities, strict=True)
        ]
        return probabilities
