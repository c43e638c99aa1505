"""A request's frames or slide turned into the vision features its model was trained on.

The encoders are frozen and outside the model, so a package records how its training made the
features (:class:`~orstream.package.card.VLMEncoderSettings`): the segmenter package, its grid,
the instrument classifier and the clip's frame count; the slide package and its regions. The
same encoders must make them here, so a frame package whose image encoder, or an instrument
classifier whose graph, is not the recorded one (by sha256) is refused.

A clip of any length is sampled to ``window_s`` frames spread evenly over it (first and last
included), as training spread a window's seconds; a slide's features are kept for the last few
slides, since questions about one slide tend to come together and reading one takes seconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import VLMEncoderSettings
from orstream.vlm.answering.answer_backend import AnswerRequest

if TYPE_CHECKING:
    from orstream.slides.slide_models import SlideModels
    from orstream.vlm.visual.frame_features import FrameFeatures

KEPT_SLIDES = 4


def clip_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames spread evenly over ``frames`` [T, H, W, 3], first and last included
    (frames repeat when the clip is shorter)."""
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return frames[picks]


class VisualEncoders:
    """Args:
    settings: the package's record of its encoders.
    frame_package: the segmenter package (default: the recorded path).
    slide_package: the slide package (default: the recorded path, or the shipped one).
    instrument_package: the instrument classifier (default: the recorded path).

    A package given here stands in for the recorded path (a model served on another machine
    or from another folder than it was trained in); its graph must still be the recorded one.

    Encoders open on first use, so a server that answers only slides never loads the frame
    encoder. Safe to share between threads.
    """

    def __init__(
        self,
        settings: VLMEncoderSettings,
        frame_package: Path | None = None,
        slide_package: Path | None = None,
        instrument_package: Path | None = None,
    ) -> None:
        self.settings = settings
        self._frame_path = frame_package or _recorded(settings.frame_package)
        self._slide_path = slide_package or _recorded(settings.slide_package)
        self._instrument_path = instrument_package or _recorded(settings.instrument_package)
        self._frames: FrameFeatures | None = None
        self._slides: SlideModels | None = None
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()

    def features(self, request: AnswerRequest) -> np.ndarray:
        """Features [N, F] of the request's clip or slide.

        Raises:
            OrstreamError: the encoder cannot be opened or is not the recorded one, or the slide
                cannot be read.
        """
        if request.frames is not None:
            return self.clip_features(request.frames)
        assert request.slide is not None
        return self.slide_features(Path(request.slide))

    def clip_features(self, frames: np.ndarray) -> np.ndarray:
        """Features [window_s * cells, F] of a clip's RGB frames [T, H, W, 3]."""
        encoder = self._frame_encoder()
        tokens = encoder.encode(clip_frames(frames, self.settings.window_s))
        return tokens.reshape(-1, tokens.shape[-1])

    def _frame_encoder(self) -> FrameFeatures:
        from orstream.vlm.visual.frame_features import FrameFeatures

        with self._lock:
            if self._frames is None:
                if self._frame_path is None:
                    raise OrstreamError("this model records no frame package to encode clips")
                instruments = self._instrument_path
                encoder = FrameFeatures(
                    self._frame_path, self.settings.frame_grid, instruments=instruments
                )
                _check_recorded(
                    self._frame_path,
                    "image encoder",
                    encoder.sha256,
                    self.settings.frame_package_sha256,
                )
                if encoder.evidence is not None:
                    assert instruments is not None  # the encoder has evidence only with it
                    _check_recorded(
                        instruments,
                        "instrument classifier",
                        encoder.evidence.sha256,
                        self.settings.instrument_package_sha256,
                    )
                self._frames = encoder
            return self._frames

    def slide_features(self, path: Path) -> np.ndarray:
        """Features [regions, F] of the slide at ``path`` (kept for the last few slides)."""
        from orstream.slides.slide_models import SlideModels
        from orstream.vlm.visual.slide_features import slide_region_features

        try:
            stat = path.stat()
        except OSError:
            raise OrstreamError(f"{path}: slide not found") from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            if self._slides is None:
                models = SlideModels(self._slide_path, threads=1)
                recorded = self.settings.slide_package_sha256
                actual = models.package.card.hashes.model_onnx
                if recorded is not None and actual != recorded:
                    raise OrstreamError(
                        f"{models.package.root}: its patch encoder is not the one this model "
                        f"was trained on (sha256 {actual[:12]}..., recorded {recorded[:12]}...)"
                    )
                self._slides = models
            models = self._slides
        features = slide_region_features(path, models, self.settings.slide_regions)
        with self._lock:
            self._kept[key] = features
            while len(self._kept) > KEPT_SLIDES:
                self._kept.popitem(last=False)
        return features


def _check_recorded(path: Path, what: str, actual: str, recorded: str | None) -> None:
    """Refuse a graph that is not the one the model was trained on (nothing recorded: any)."""
    if recorded is not None and actual != recorded:
        raise OrstreamError(
            f"{path}: its {what} is not the one this model was trained on (sha256 "
            f"{actual[:12]}..., recorded {recorded[:12]}...)"
        )


def _recorded(path: str | None) -> Path | None:
    return Path(path) if path else None
