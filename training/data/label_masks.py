"""Label masks of a data set in the PitVis layout, read strictly.

Instrument and anatomy masks (``masks/video_NN/TTTTT.png``, ``anatomy/video_NN/TTTTT.png``) are
single-channel 8-bit PNGs of the video's size whose pixels are class codes. Training and the
segmentation evaluation read them here, so a malformed mask is the same one-line error in both.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from orstream.errors import OrstreamError


def read_label_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A single-channel uint8 label mask of ``shape`` (height, width).

    Raises:
        OrstreamError: the file is missing, unreadable or of another size or type.
    """
    if not path.is_file():
        raise OrstreamError(f"{path}: mask missing")
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None or label.dtype != np.uint8 or label.shape != shape:
        raise OrstreamError(
            f"{path}: not a single-channel 8-bit mask of the video's size {shape[1]}x{shape[0]}"
        )
    return label
