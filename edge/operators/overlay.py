"""The overlay of one stream as an operator: every video frame drawn with the latest results.

The video path never waits for inference: frames come on ``video`` (every frame of the
stream), and the latest workflow result and masks of the stream arrive on ``results`` and
``masks`` whenever the models produce them. Each frame is drawn with what is newest; a result
older than the model's interval plus ``stale_after_ms`` is marked stale, and masks that old are
not drawn at all (a misplaced outline in the operative field misleads).

When the source falls silent for ``no_signal_after_ms``, the last picture is drawn again with a
NO SIGNAL marker and emitted on ``no_signal`` (for every sink of a live stream, and the sinks
people watch of a file), every ``no_signal_after_ms`` until frames come back, so an OR screen
never freezes on an old picture without saying so, and a recording shows where the feed was
lost.

With a privacy mode, NO SIGNAL frames are withheld (blanked or blurred, with a banner) while
the stream's latest result is private (:mod:`orstream.edge.overlay.privacy`); the privacy gate
judges the video frames (:mod:`orstream.edge.operators.privacy_gate`).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from orstream.edge.graph.meters import RateMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.overlay import Overlay, OverlayContext
from orstream.edge.overlay.privacy import PrivacyMode, is_private, withheld
from orstream.results import FrameResult
from orstream.step_timeline import StepTimeline
from orstream.streams.frame import Frame


class OverlayOp(Operator):
    """Draws one stream's video with its latest results.

    Args:
        stream_id: the stream.
        overlay: the annotators to draw.
        result_interval_s: how often results are due (1 / the recognizer's rate; None: no
            recognizer).
        masks_interval_s: how often masks are due (1 / the segmenter's rate; None: none).
        stale_after_ms: how far past its interval a result turns stale.
        no_signal_after_ms: silence from the source after which NO SIGNAL frames go out.
        privacy: withhold private NO SIGNAL frames this way (None: never).
        name: the operator's name (default ``<stream>.overlay``).
    """

    def __init__(
        self,
        stream_id: str,
        overlay: Overlay,
        result_interval_s: float | None = None,
        masks_interval_s: float | None = None,
        stale_after_ms: float = 250.0,
        no_signal_after_ms: float = 1000.0,
        privacy: PrivacyMode | None = None,
        name: str | None = None,
    ) -> None:
        self.privacy = privacy
        self.stream_id = stream_id
        self.overlay = overlay
        self.result_interval_s = result_interval_s
        self.masks_interval_s = masks_interval_s
        self.stale_after_ms = stale_after_ms
        self.idle_s = no_signal_after_ms / 1e3
        self.latest: FrameResult | None = None
        self.masks: FrameResult | None = None
        self.timeline = StepTimeline(stream_id)
        self.rate = RateMeter()
        self.frames_stale = 0
        self.no_signal_frames = 0
        self._last: Frame | None = None
        super().__init__(name or f"{stream_id}.overlay")

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("video", capacity=24, policy="drop_oldest")
        spec.input("results", capacity=1, policy="latest")
        spec.input("masks", capacity=1, policy="latest")
        spec.output("video")
        spec.output("no_signal")

    def compute(self, received: Received) -> None:
        for result in received["results"]:
            self.latest = result
            self.timeline.add(result)
        for masks in received["masks"]:
            self.masks = masks
        for frame in received["video"]:
            started = time.monotonic_ns()
            context = self.context(frame, no_signal=False)
            self.frames_stale += context.stale
            image = self.overlay.draw(np.asarray(frame.image), context)
            self.meter.record_since(started)
            self.rate.tick()
            self._last = frame
            self.emit("video", replace(frame, image=image))

    def on_idle(self) -> None:
        if self._last is None or all(c.drained() for c in self.inputs["video"]):
            return  # nothing shown yet, or the stream is over (not silent)
        context = self.context(self._last, True)
        image = self.overlay.draw(np.asarray(self._last.image), context)
        if self.privacy is not None and is_private(self.latest, context.stale):
            image = withheld(image, self.privacy)  # RTSP takes these too
        self.no_signal_frames += 1
        # Stamped now, on the stream's timeline: a recording holds it where the silence was.
        now_ns = time.monotonic_ns()
        pts_ns = self._last.pts_ns + (now_ns - self._last.capture_ns)
        self.emit("no_signal", replace(self._last, image=image, pts_ns=pts_ns, capture_ns=now_ns))

    def context(self, frame: Frame, no_signal: bool) -> OverlayContext:
        """What the overlay knows at the moment ``frame`` is drawn."""
        now_ns = time.monotonic_ns()
        latest = self.latest
        age_ms = 0.0
        stale = False
        if latest is not None and self.result_interval_s is not None:
            age_ms = (now_ns - latest.produced_ns) / 1e6
            stale = age_ms > self.result_interval_s * 1e3 + self.stale_after_ms
            if stale:
                latest = replace(latest, stale=True)
        masks_stale = False
        if self.masks is not None and self.masks_interval_s is not None:
            masks_age_ms = (now_ns - self.masks.produced_ns) / 1e6
            masks_stale = masks_age_ms > self.masks_interval_s * 1e3 + self.stale_after_ms
        return OverlayContext(
            result=latest,
            stale=stale,
            result_age_ms=age_ms,
            timeline=self.timeline.segments() if latest is not None else (),
            frame_pts_ns=frame.pts_ns,
            fps=self.rate.rate(),
            latency_ms=latest.latency_ms if latest is not None else math.nan,
            no_signal=no_signal,
            segmentation=self.masks,
            segmentation_stale=masks_stale,
        )
