"""What every overlay annotator is: one class drawing one thing in place."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from orstream.edge.overlay.context import OverlayContext


class Annotator(Protocol):
    """Draws one element of the overlay."""

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        """Draw on ``image`` (HxWx3 uint8 RGB) in place."""
        ...
