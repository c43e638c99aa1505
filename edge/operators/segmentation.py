"""Live segmentation as an operator: one segmenter serving every stream at its own rate.

Each stream's frames reach ``frames`` through their own connection (newest frame wins, at the
segmenter's rate), so a slow segmenter only makes masks rarer; it never holds up the video.
Each sampled frame is encoded once (the embedding is kept in the shared
:class:`~orstream.edge.models.frame_prompter.FramePrompter`, so a client's prompt on it runs the
decoder only) and :class:`~orstream.edge.models.live_masks.LiveMasks` finds, names and picks the
masks shown.
"""

from __future__ import annotations

import time

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator, OperatorSpec, Received
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.segmenter_model import ImageEmbedding
from orstream.edge.operators.model_status import model_statuses
from orstream.results import FrameResult, SegmentationResult
from orstream.status import ModelStatus
from orstream.streams.frame import Frame, host_image


class SegmentationOp(Operator):
    """Masks for the sampled frames of every stream connected to ``frames``.

    Args:
        prompter: the segmenter and the frame memory it shares with client prompts.
        masks: which masks to show for a frame.
        rate_hz: frames per second to segment per stream (default the package's rate).
        name: the operator's name (default ``segmentation``).
    """

    def __init__(
        self,
        prompter: FramePrompter,
        masks: LiveMasks,
        rate_hz: float | None = None,
        name: str = "segmentation",
    ) -> None:
        self.prompter = prompter
        self.live_masks = masks
        classifier = masks.classifier
        self.models = (prompter.model.label,) + (() if classifier is None else (classifier.label,))
        """What made its masks: the segmenter, and the classifier that named instruments."""
        self.rate_hz = rate_hz or prompter.model.rate_hz
        self.segmented: dict[str, int] = {}
        self.frame_to_masks: dict[str, StageMeter] = {}
        super().__init__(name)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("frames", capacity=1, policy="latest", rate_hz=self.rate_hz)
        spec.output("masks")

    def compute(self, received: Received) -> None:
        frames = received["frames"]
        if not frames:
            return
        started = time.monotonic_ns()
        embeddings = self.prompter.embeddings(frames)  # one encoder batch for every stream
        encode_share_ms = (time.monotonic_ns() - started) / 1e6 / len(frames)
        for frame, (embedding, _) in zip(frames, embeddings, strict=True):
            started = time.monotonic_ns()
            result = self.masks_of(frame, embedding)
            # Per frame: its share of the batch's encoding and its own masks.
            self.meter.record(encode_share_ms + (time.monotonic_ns() - started) / 1e6)
            stream = frame.stream_id
            self.segmented[stream] = self.segmented.get(stream, 0) + 1
            meter = self.frame_to_masks.get(stream)
            if meter is None:
                meter = self.frame_to_masks[stream] = StageMeter(f"{stream}.frame_to_masks")
            meter.record(result.latency_ms)
            self.emit("masks", result)

    def masks_of(self, frame: Frame, embedding: ImageEmbedding) -> FrameResult:
        """The masks shown for one frame, from its embedding."""
        if frame.discontinuity:
            self.live_masks.forget(frame.stream_id)
        masks = self.live_masks(host_image(frame.image), embedding, frame.stream_id)
        return FrameResult(
            stream_id=frame.stream_id,
            index=frame.index,
            pts_ns=frame.pts_ns,
            capture_ns=frame.capture_ns,
            produced_ns=time.monotonic_ns(),
            models=self.models,
            segmentation=SegmentationResult(masks),
        )

    def model_status(self, streams: list[str]) -> list[ModelStatus]:
        """The segmenter as ``GetStatus`` lists it: one entry per stream it serves."""
        model = self.prompter.model
        return model_statuses(
            self,
            model.package.card,
            model.encoder.label,
            model.selection,
            self.rate_hz,
            self.segmented,
            streams,
        )
