"""What the overlay knows when it draws one video frame."""

from __future__ import annotations

from dataclasses import dataclass

from orstream.results import FrameResult
from orstream.step_timeline import StepSegment


@dataclass(frozen=True)
class OverlayContext:
    """The state of one stream at the moment a video frame is drawn.

    The video path never waits for inference, so the result is the latest one the stream has,
    usually from an earlier frame.

    Attributes:
        result: the stream's latest result (None before the first one).
        stale: the result is older than the runtime's limit and must not read as current.
        result_age_ms: how old the result is, on the video frame's clock.
        timeline: the stream's step segments so far, oldest first.
        frame_pts_ns: the drawn frame's source timestamp (the timeline's "now").
        fps: measured frame rate of the video path.
        latency_ms: recent frame-to-result latency (NaN when unknown).
        no_signal: the source delivers no frames (the drawn image is a placeholder).
        segmentation: the stream's latest result that carries segmentation masks (None before
            the first one, or without a segmenter). Masks come at the segmenter's own rate,
            apart from the workflow results in ``result``.
        segmentation_stale: the masks are older than the runtime's limit for them.
    """

    result: FrameResult | None = None
    stale: bool = False
    result_age_ms: float = 0.0
    timeline: tuple[StepSegment, ...] = ()
    frame_pts_ns: int = 0
    fps: float = 0.0
    latency_ms: float = float("nan")
    no_signal: bool = False
    segmentation: FrameResult | None = None
    segmentation_stale: bool = False
