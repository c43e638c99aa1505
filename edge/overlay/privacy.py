"""The privacy gate: what leaves the device never shows the room or a patient outside surgery.

A frame is private when the recognizer calls it out of patient (its smoothed step, or its own
probability of out of patient on a frame, :data:`OUT_OF_PATIENT_AT` or more), and, failing
closed, whenever there is no fresh answer: before the stream's first result and while its
results are stale. A private frame is blanked (black) or blurred beyond recognition before it
goes to a sink that leaves the device (the recording, the RTSP output), with a banner that says
so; the OR display in the room keeps the picture. Which results judge which frames is the
gate's (:mod:`orstream.edge.operators.privacy_gate`).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from orstream.edge.overlay.drawing import draw_text
from orstream.edge.overlay.style import style_for
from orstream.labels import OUT_OF_PATIENT
from orstream.results import FrameResult

PrivacyMode = Literal["blank", "blur"]
BANNER = "PRIVACY: video withheld"
BLUR_SHRINK = 32
"""A blurred frame keeps one pixel in this many per side: shapes at most, no faces or text."""


OUT_OF_PATIENT_AT = 0.5
"""A result whose frame is out of patient with this probability or more calls it private."""


def calls_out_of_patient(result: FrameResult) -> bool:
    """Whether ``result`` calls its frame out of patient (or says nothing about the step)."""
    step = result.step
    return step is None or step.code == OUT_OF_PATIENT or step.out_of_patient >= OUT_OF_PATIENT_AT


def is_private(result: FrameResult | None, stale: bool) -> bool:
    """Whether a frame drawn with ``result`` (the stream's latest) may not leave the device."""
    return result is None or stale or calls_out_of_patient(result)


def withheld(image: np.ndarray, mode: PrivacyMode) -> np.ndarray:
    """A new frame of ``image``'s size that withholds it (``blank`` or ``blur``), bannered."""
    height, width = image.shape[:2]
    if mode == "blank":
        out = np.zeros_like(image)
    else:
        small = cv2.resize(
            image,
            (max(1, width // BLUR_SHRINK), max(1, height // BLUR_SHRINK)),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    style = style_for(height)
    text_width, text_height = style.title.size(BANNER)
    draw_text(
        out, BANNER, style.title, (width - text_width) // 2, (height - text_height) // 2,
        (255, 255, 255),
    )  # fmt: skip
    return out
