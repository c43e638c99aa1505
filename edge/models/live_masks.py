"""Which masks the OR display shows for one segmented frame.

Each target class is prompted by text on the frame's embedding; masks whose predicted IoU is
below ``min_score`` or that are empty are left out. The targets: the classes the user listed,
or the instruments the stream's recognizer currently reports plus the anatomy classes when a
recognizer runs, or every class of the package.
"""

from __future__ import annotations

from collections.abc import Sequence

from orstream.edge.models.frame_prompter import segment_mask
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.errors import OrstreamError
from orstream.labels import ANATOMY
from orstream.prompts import Prompt
from orstream.results import FrameResult, SegmentMask


class LiveMasks:
    """Which masks the OR display shows for one segmented frame.

    Args:
        model: the loaded segmenter.
        classes: class names to prompt on every frame (None: automatic, see the module).
        min_score: smallest predicted IoU of a mask that is kept.

    Raises:
        OrstreamError: a listed class the package does not know.
    """

    def __init__(
        self, model: SegmenterModel, classes: Sequence[str] | None = None, min_score: float = 0.5
    ) -> None:
        unknown = sorted(set(classes or ()) - set(model.classes))
        if unknown:
            raise OrstreamError(
                f"segmentation classes {', '.join(unknown)} are not in {model.label} "
                f"(known: {', '.join(sorted(model.classes))})"
            )
        self.model = model
        self.classes = tuple(classes) if classes is not None else None
        self.min_score = min_score

    def targets(self, recognized: FrameResult | None, has_recognizer: bool) -> tuple[str, ...]:
        """The class names to prompt on a frame."""
        if self.classes is not None:
            return self.classes
        known = self.model.classes
        if not has_recognizer:
            return tuple(known)
        seen = (
            ()
            if recognized is None or recognized.instruments is None
            else (recognized.instruments.names)
        )
        anatomy = tuple(name for name in ANATOMY.values() if name in known)
        return tuple(name for name in seen if name in known) + anatomy

    def __call__(
        self, embedding: ImageEmbedding, recognized: FrameResult | None, has_recognizer: bool = True
    ) -> tuple[SegmentMask, ...]:
        masks = []
        for name in self.targets(recognized, has_recognizer):
            prediction = self.model.segment(embedding, Prompt(text=name))
            if prediction.score >= self.min_score and prediction.mask.any():
                masks.append(segment_mask(prediction, self.model.classes[name], name))
        masks.sort(key=lambda mask: -mask.score)
        return tuple(masks)
