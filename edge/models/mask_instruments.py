"""Which instruments a frame shows, found by the segmenter and named by the instrument classifier.

The recognizer's own instrument head sees the frame at 112x192 through pooled features and
tells the 18 instruments apart poorly (instrument F1 0.39 on fresh phantom cases); the
segmenter's grid clicks find the instruments at its full input size and the classifier names
each from a tip crop, the path the OR display's live masks take
(:class:`~orstream.edge.models.live_masks.LiveMasks`), which names them at F1 0.87 on the same
cases. So when both packages are given, the PitVis instrument slots of a recognizer result come
from here: the named instruments, most confident first, at most two (PitVis allows two per
frame). A find the classifier calls "no instrument" or names below ``min_confidence`` is not
an instrument; an object found on the stream's previous sampled frame too is named from both
frames, which steadies a name through one blurred frame.
"""

from __future__ import annotations

import numpy as np

from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.segmenter_model import SegmenterModel


class MaskInstruments:
    """Names the instruments of sampled frames, per stream.

    Args:
        segmenter: the loaded interactive segmenter.
        classifier: the loaded instrument classifier.
        min_confidence: the smallest classifier probability of a name that counts.
    """

    def __init__(
        self,
        segmenter: SegmenterModel,
        classifier: InstrumentClassifier,
        min_confidence: float = 0.4,
    ) -> None:
        self.masks = LiveMasks(segmenter, classifier, min_confidence=min_confidence)
        self.label = f"{segmenter.label}+{classifier.label}"

    def present(self, image: np.ndarray, stream: str = "") -> dict[int, float]:
        """Instrument code -> the best confidence of its name, for the instruments that the
        RGB uint8 frame ``image`` of ``stream`` shows."""
        embedding = self.masks.model.embed(image)
        named: dict[int, float] = {}
        for item in self.masks.named(image, self.masks.found(image, embedding), stream):
            named[item.code] = max(named.get(item.code, 0.0), item.confidence)
        return named

    def forget(self, stream: str) -> None:
        """Drop what the stream's earlier frames said (its video jumped or it is gone)."""
        self.masks.forget(stream)
