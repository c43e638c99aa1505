"""The overlay: a stack of annotators drawn, in order, on a copy of each video frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orstream.edge.overlay.annotator import Annotator
from orstream.edge.overlay.banner import OutOfPatientBanner
from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.hud import HudAnnotator
from orstream.edge.overlay.instruments import InstrumentsAnnotator
from orstream.edge.overlay.markers import NoSignalMarker, StaleMarker
from orstream.edge.overlay.masks import MasksAnnotator
from orstream.edge.overlay.step import StepAnnotator
from orstream.edge.overlay.timeline import TimelineAnnotator


class Overlay:
    """Draws its annotators, in order (later ones on top), on a copy of a frame.

    Args:
        annotators: what to draw.
    """

    def __init__(self, annotators: Sequence[Annotator]) -> None:
        self.annotators = tuple(annotators)

    @classmethod
    def default(cls) -> Overlay:
        """The operating-room overlay: segmentation masks first, under every panel, and the
        STALE and NO SIGNAL markers last, on top."""
        return cls(
            [
                MasksAnnotator(),
                TimelineAnnotator(),
                StepAnnotator(),
                InstrumentsAnnotator(),
                OutOfPatientBanner(),
                HudAnnotator(),
                StaleMarker(),
                NoSignalMarker(),
            ]
        )

    def draw(self, image: np.ndarray, context: OverlayContext) -> np.ndarray:
        """A copy of ``image`` (HxWx3 uint8 RGB) with every annotator drawn on it."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"the overlay draws on HxWx3 uint8 RGB images, not {image.dtype} {image.shape}"
            )
        drawn = np.array(image, copy=True, order="C")
        for annotator in self.annotators:
            annotator.annotate(drawn, context)
        return drawn
