"""The unit every orstream source emits and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One video frame on its way through orstream.

    Attributes:
        image: HxWx3 uint8 RGB as a numpy array, or a torch tensor (e.g. already on the GPU).
        pts_ns: presentation time from the source's own clock (nanoseconds from its start).
        capture_ns: ``time.monotonic_ns()`` when the frame entered orstream.
        index: frame number from the source's start.
        stream_id: which stream the frame belongs to.
        discontinuity: set on the first frame after a seek, reconnect or source switch;
            temporal models reset their state on it.
    """

    image: Any
    pts_ns: int
    capture_ns: int
    index: int
    stream_id: str
    discontinuity: bool = False


def host_image(image: object) -> np.ndarray:
    """A frame's RGB pixels in host memory: a frame decoded to the GPU is copied back, for what
    only runs on the host (the instrument classifier's tip crops)."""
    if isinstance(image, np.ndarray):
        return image
    return np.asarray(image.cpu().numpy())  # type: ignore[attr-defined]
