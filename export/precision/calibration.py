"""INT8 calibration frames for ``orstream export trt --int8 --calib SOURCE``.

SOURCE is one of:

- a ``.npy`` file of RGB uint8 frames ``[N, H, W, 3]`` in stream order, taken as they are;
- a video file, decoded with PyAV and sampled at the card's clip rate, as the edge samples a
  live feed;
- a data set in the PitVis layout (a folder holding ``videos/video_NN.mp4``): its videos in
  turn, each sampled at the card's rate, an even share of the frames from each;
- a phantom case, ``phantom://?seed=S&video=N&seconds=T&...`` (the parameters of
  ``orstream run --source``), rendered at the card's rate unless ``fps`` is given.

Frames come as clips, one per video, and the temporal state restarts with each clip as it does
on a new stream. At most ``limit`` frames are taken. The frames' sha256 identifies the
calibration: the ranges calibrated on them (:mod:`orstream.export.precision.activation_ranges`)
are kept beside the engine under that name, so rebuilding on the same frames skips the
calibration passes and other frames never read stale ranges; the manifest records it too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage
from orstream.pitvis.layout import video_files

DEFAULT_FRAMES = 256
"""Frames taken by default: the entropy ranges settle within a few hundred."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts", ".m4v"})


@dataclass(frozen=True)
class Calibration:
    """Calibration frames as clips in stream order, and where they came from."""

    source: str
    clips: tuple[np.ndarray, ...]
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for clip in self.clips:
            digest.update(repr(clip.shape).encode())
            digest.update(np.ascontiguousarray(clip).data)
        object.__setattr__(self, "sha256", digest.hexdigest())

    @property
    def frame_count(self) -> int:
        return sum(len(clip) for clip in self.clips)

    def describe(self) -> str:
        return (
            f"{self.frame_count} frames in {len(self.clips)} clip(s) from {self.source} "
            f"(sha256 {self.sha256[:12]}...)"
        )


def read_calibration(
    source: str,
    rate_hz: float,
    limit: int = DEFAULT_FRAMES,
    progress: Callable[[str], None] = lambda line: None,
) -> Calibration:
    """The calibration frames ``source`` names (see the module docstring).

    Args:
        source: a ``.npy`` file, a video file, a PitVis-layout folder or a phantom URI.
        rate_hz: the rate the model sees frames at (the card's ``clip.fps``).
        limit: the most frames taken.
        progress: told which video or case is being read.

    Raises:
        OrstreamError: the source is missing or unreadable, holds no frame, or ``limit`` is
            not positive.
    """
    check_source(source, limit)
    if urlsplit(source).scheme == "phantom":
        progress(f"rendering {source}")
        clips: list[np.ndarray] = [_phantom(source, rate_hz, limit)]
    else:
        path = Path(source)
        if path.is_dir():
            clips = _data_set(path, rate_hz, limit, progress)
        elif path.suffix.lower() == ".npy":
            clips = [_npy(path)[:limit]]
        else:
            progress(f"decoding {path.name}")
            clips = [_video(path, rate_hz, limit)]
    clips = [clip for clip in clips if len(clip)]
    if not clips:
        raise OrstreamError(f"--calib {source}: no frames")
    return Calibration(source, tuple(clips))


def check_source(source: str, limit: int = DEFAULT_FRAMES) -> None:
    """What can be told of ``source`` and ``limit`` without reading a frame.

    Raises:
        OrstreamError: ``limit`` is not positive, or ``source`` is neither a phantom URI nor
            an existing folder, ``.npy`` or video file.
    """
    if limit < 1:
        raise OrstreamError(f"--calib-frames must be at least 1, not {limit}")
    if urlsplit(source).scheme == "phantom":
        return
    path = Path(source)
    if not path.exists():
        raise OrstreamError(f"--calib {source}: file not found")
    if not path.is_dir() and path.suffix.lower() not in {".npy", *VIDEO_SUFFIXES}:
        raise OrstreamError(
            f"--calib {source}: expected a .npy file of frames, a video file "
            f"({', '.join(sorted(VIDEO_SUFFIXES))}), a PitVis-layout folder or a "
            "phantom:// URI"
        )


def _npy(path: Path) -> np.ndarray:
    try:
        frames = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise OrstreamError(f"--calib {path}: not a numpy .npy file ({error})") from None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or not len(frames):
        raise OrstreamError(
            f"--calib {path}: expected RGB uint8 frames [N, H, W, 3] with N >= 1, got "
            f"{frames.dtype} {list(frames.shape)}"
        )
    return frames


def _sampled(frames: Iterator[Any], rate_hz: float, limit: int) -> np.ndarray:
    """The frames a model at ``rate_hz`` sees, the first ``limit`` of them."""
    from orstream.edge.graph.rate_sampler import RateSampler

    sampler = RateSampler(rate_hz)
    taken = []
    for frame in frames:
        if sampler.take(frame):
            taken.append(frame.image)
            if len(taken) == limit:
                break
    return np.stack(taken) if taken else np.zeros((0, 1, 1, 3), np.uint8)


def _video(path: Path, rate_hz: float, limit: int) -> np.ndarray:
    from orstream.streams.sources.pyav_source import PyAVSource

    source = PyAVSource(path)
    try:
        return _sampled(source.frames(), rate_hz, limit)
    finally:
        source.close()


def _data_set(
    folder: Path, rate_hz: float, limit: int, progress: Callable[[str], None]
) -> list[np.ndarray]:
    videos = list(video_files(folder).values())
    if not videos:
        raise OrstreamError(
            f"--calib {folder}: no videos/video_NN.mp4 in it (a data set in the PitVis layout)"
        )
    share = math.ceil(limit / len(videos))
    clips: list[np.ndarray] = []
    for video in videos:
        wanted = min(share, limit - sum(len(clip) for clip in clips))
        if wanted <= 0:
            break
        progress(f"decoding {video.name}")
        clips.append(_video(video, rate_hz, wanted))
    return clips


def _phantom(uri: str, rate_hz: float, limit: int) -> np.ndarray:
    from orstream.streams.phantom.source import PhantomSource
    from orstream.streams.sources.open_source import PHANTOM_PARAMS, uri_params

    params = uri_params(uri, {k: v for k, v in PHANTOM_PARAMS.items() if k != "loop"})
    params.setdefault("fps", rate_hz)
    source = PhantomSource(**params, paced=False)
    return _sampled(source.frames(), rate_hz, limit)


def calibration_runs(
    package: ModelPackage,
    calibration: Calibration,
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
) -> Iterator[dict[str, np.ndarray]]:
    """What ``run`` gives for each calibration frame, fed as the edge would feed it.

    Frames are pre-processed per the card; the state inputs start at the card's initial state
    with each clip and take, for each next frame, the state ``run`` returned for the previous
    one, so the calibration sees the state ranges of a running stream rather than only zeros.

    Args:
        package: the package whose card gives pre-processing and state.
        calibration: the frames.
        run: the graph (its outputs must include the card's state outputs), e.g.
            :meth:`orstream.export.onnx.graph_probe.GraphProbe.run`.
    """
    from orstream.package.preprocess import ImagePreprocessor

    card = package.card
    preprocess = ImagePreprocessor.from_card(card)
    for clip in calibration.clips:
        state = card.initial_state()
        for frame in clip:
            outputs = run({preprocess.spec.name: preprocess(frame), **state})
            yield outputs
            if card.state:
                state = card.next_state(outputs)
