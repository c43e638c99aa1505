"""Job kind ``probe``: checks a recording is whole and readable, and describes its picture.

Before a recording is analysed or archived, its sender wants to know that it arrived whole and
what is in it: every frame is decoded (a file with fewer frames than its container declares is
reported truncated, a damaged one fails with FFmpeg's reason), and each window of ``window_s``
seconds (default 1) is summarised as a partial result while the job runs: mean brightness,
black frames (the camera covered or outside the body), frozen frames (a stalled feed repeats
its last picture) and sharpness (the variance of the luma's Laplacian: smoke and defocus lower
it). The result holds the file's format and the same measures over the whole recording.

Input: one video file (any container and codec FFmpeg reads), uploaded or by server path.
Parameter: ``window_s``, seconds per partial result (0 < window_s <= 3600).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.jobs import JobSubmission
from orstream.server.kinds.job_kind import JobContext
from orstream.server.kinds.opened_video import OpenedVideo

BLACK_LUMA = 16.0
"""A frame whose mean luma (0..255) is below this is black."""
FROZEN_DIFFERENCE = 0.5
"""A frame whose mean absolute luma difference to the previous one is below this is frozen."""
_SAMPLE_STRIDE = 2
"""Every second pixel in each direction is measured: the measures are averages, and halving
the pixels read keeps the job as fast as decoding."""
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MAX_WINDOW_S = 3600.0


@dataclass
class _Summary:
    """Measures accumulated over frames."""

    frames: int = 0
    luma: float = 0.0
    black: int = 0
    frozen: int = 0
    sharpness: float = 0.0
    times: list[float] = field(default_factory=list)

    def add(self, luma: float, black: bool, frozen: bool, sharpness: float, time_s: float) -> None:
        self.frames += 1
        self.luma += luma
        self.black += black
        self.frozen += frozen
        self.sharpness += sharpness
        self.times.append(time_s)

    def as_dict(self) -> dict[str, Any]:
        count = max(self.frames, 1)
        return {
            "frames": self.frames,
            "mean_luma": round(self.luma / count, 3),
            "black_frames": self.black,
            "frozen_frames": self.frozen,
            "sharpness": round(self.sharpness / count, 3),
        }


class ProbeKind:
    """The ``probe`` job kind (see the module's docstring)."""

    name = "probe"
    description = (
        "check a video is whole; its format, and brightness, black, frozen and sharpness per window"
    )

    def check(self, submission: JobSubmission) -> None:
        """One input, and at most the ``window_s`` parameter.

        Raises:
            OrstreamError: otherwise.
        """
        if len(submission.inputs) != 1:
            raise OrstreamError(f"probe takes one video input, not {len(submission.inputs)}")
        _window_s(submission.params)

    def run(self, context: JobContext) -> Mapping[str, Any]:
        """Probe and measure the job's video; a partial result per window."""
        window_s = _window_s(context.params)
        ((name, path),) = context.inputs.items()
        video = OpenedVideo(path, name)
        total = _Summary()
        window = _Summary()
        window_index = 0
        windows = 0
        previous: np.ndarray | None = None
        expected = video.frame_count or None
        context.progress(0.0, f"reading {expected or 'the'} frames")
        for time_s, image in video.frames():
            if window.frames and int(time_s // window_s) != window_index:
                context.partial(_window(window, window_index, window_s))
                windows += 1
                window = _Summary()
            window_index = int(time_s // window_s)
            luma = image[::_SAMPLE_STRIDE, ::_SAMPLE_STRIDE].astype(np.float32) @ _LUMA
            mean = float(luma.mean())
            frozen = (
                previous is not None and float(np.abs(luma - previous).mean()) < FROZEN_DIFFERENCE
            )
            measures = (mean, mean < BLACK_LUMA, frozen, _sharpness(luma), time_s)
            total.add(*measures)
            window.add(*measures)
            previous = luma
            done = min(total.frames / expected, 0.99) if expected else 0.0
            context.progress(done, f"frame {total.frames} of {expected or '?'}")
        if window.frames:
            context.partial(_window(window, window_index, window_s))
            windows += 1
        if total.frames == 0:
            raise OrstreamError(f"{name}: the video stream holds no frames (empty or truncated)")
        if expected and total.frames < expected:
            raise OrstreamError(f"{name}: truncated: {total.frames} of {expected} frames present")
        return {
            "input": name,
            "width": video.width,
            "height": video.height,
            "fps": round(video.fps, 3),
            "duration_s": round(total.times[-1] + (1 / video.fps if video.fps else 0.0), 3),
            "codec": video.codec,
            "pixel_format": video.pixel_format,
            "windows": windows,
            "window_s": window_s,
            **total.as_dict(),
        }


def _window(summary: _Summary, index: int, window_s: float) -> dict[str, Any]:
    return {
        "window": index,
        "start_s": round(index * window_s, 3),
        "end_s": round((index + 1) * window_s, 3),
        **summary.as_dict(),
    }


def _sharpness(luma: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of a luma image."""
    if min(luma.shape) < 3:
        return 0.0
    laplacian = (
        luma[1:-1, :-2] + luma[1:-1, 2:] + luma[:-2, 1:-1] + luma[2:, 1:-1] - 4 * luma[1:-1, 1:-1]
    )
    return float(laplacian.var())


def _window_s(params: Mapping[str, str]) -> float:
    unknown = sorted(set(params) - {"window_s"})
    if unknown:
        raise OrstreamError(f"probe takes only the parameter window_s, not {', '.join(unknown)}")
    text = params.get("window_s", "1")
    try:
        value = float(text)
    except ValueError:
        raise OrstreamError(f"window_s {text[:40]!r}: not a number of seconds") from None
    if not 0.0 < value <= MAX_WINDOW_S:
        raise OrstreamError(f"window_s {value:g}: must be above 0 and at most {MAX_WINDOW_S:g}")
    return value
