"""What ``orstream tokenize`` reads: one image, or the frames of a video at a chosen rate.

An input is an image when OpenCV reads it as one, else a video when PyAV finds a complete video
stream in it; anything else is refused in one line. Images must be 8-bit colour: grayscale is
refused (the tokenizer was trained on RGB endoscopy and a gray frame is not one), an alpha
channel is dropped (the colour is all the tokenizer sees).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from orstream.errors import OrstreamError
from orstream.streams.sources.pyav_source import PyAVSource
from orstream.streams.sources.video_file import probe_video


@dataclass(frozen=True)
class VideoPlan:
    """The frames of a video to tokenize.

    Attributes:
        path: the video file.
        size: (height, width) of its frames.
        frames: the frame numbers to take, ascending.
        fps: the rate they are taken at.
    """

    path: Path
    size: tuple[int, int]
    frames: tuple[int, ...]
    fps: float

    def read(self) -> Iterator[np.ndarray]:
        """The planned frames, RGB uint8 (height, width, 3), in order."""
        wanted = set(self.frames)
        for frame in PyAVSource(self.path).frames(wanted):
            yield frame.image


def read_image(path: Path) -> np.ndarray | None:
    """The RGB uint8 image at ``path``; None when OpenCV does not read it as an image.

    Raises:
        OrstreamError: the file is missing, or it is an image of another depth or a grayscale
            one.
    """
    if not path.is_file():
        raise OrstreamError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype != np.uint8:
        raise OrstreamError(f"{path}: a {image.dtype} image; the tokenizer takes 8-bit colour")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (3, 4):
        raise OrstreamError(
            f"{path}: an image of {channels} channel(s) (grayscale); the tokenizer takes RGB "
            "colour images"
        )
    code = cv2.COLOR_BGRA2RGB if channels == 4 else cv2.COLOR_BGR2RGB
    return np.ascontiguousarray(cv2.cvtColor(image, code))


def plan_video(path: Path, fps: float | None) -> VideoPlan:
    """Every frame of the video at ``path``, or the frame nearest to each instant ``1 / fps``
    apart from its start (``fps`` above the video's own takes every frame).

    Raises:
        OrstreamError: the file is neither an image OpenCV reads nor a complete video, or
            it states no frame rate, or ``fps`` is not positive.
    """
    if fps is not None and not fps > 0:
        raise OrstreamError(f"--fps must be positive, not {fps}")
    try:
        info = probe_video(path)
    except OrstreamError as error:
        raise OrstreamError(f"{path} is neither an image nor a readable video ({error})") from None
    if not info.fps > 0:
        raise OrstreamError(f"{path}: the video states no frame rate")
    if fps is None or fps >= info.fps:
        return VideoPlan(path, (info.height, info.width), tuple(range(info.frame_count)), info.fps)
    instants = math.ceil(info.frame_count / info.fps * fps - 1e-9)
    frames = sorted({min(round(k / fps * info.fps), info.frame_count - 1) for k in range(instants)})
    return VideoPlan(path, (info.height, info.width), tuple(frames), fps)
