"""What a phantom slide's region mask says under each tile: the tile's true tissue class.

A tile's class is the most common class of the mask cells under its level-0 square; training
labels tiles this way and evaluation scores the heatmap against it, so both read the mask alike.
"""

from __future__ import annotations

import numpy as np

from orstream.slides.phantom.tissue_classes import TissueClass


def majority_class(mask: np.ndarray, x: int, y: int, span: int, scale: float) -> int:
    """The most common class of ``mask`` (one cell per ``scale`` level-0 pixels) under the
    level-0 square at (x, y) of side ``span``."""
    x0, y0 = int(x / scale), int(y / scale)
    x1, y1 = (
        max(int(np.ceil((x + span) / scale)), x0 + 1),
        max(int(np.ceil((y + span) / scale)), y0 + 1),
    )
    counts = np.bincount(mask[y0:y1, x0:x1].ravel(), minlength=len(TissueClass))
    return int(counts.argmax())


def tile_classes(mask: np.ndarray, corners: np.ndarray, span: int, scale: float) -> np.ndarray:
    """The true class of each tile at ``corners`` ([N, 2] level-0 x, y), [N] int64."""
    return np.array(
        [majority_class(mask, int(x), int(y), span, scale) for x, y in corners], np.int64
    )
