"""Live segmentation: masks of the instruments (and anatomy) on frames sampled at its own rate.

Each sampled frame is encoded once (the embedding is kept for client prompts on that frame)
and prompted by text, one class at a time. Which classes: the instruments the workflow
recognizer currently reports plus the package's anatomy classes when a recognizer runs on the
stream, otherwise every class of the package; masks whose predicted IoU is below
``min_score`` or that are empty are left out. Frames reach it through a ``latest`` port, so a
slow segmenter only makes masks rarer; it never holds up the video.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.port import Port, PortClosed
from orstream.edge.graph.rate_sampler import RateSampler
from orstream.edge.models.frame_prompter import FramePrompter, segment_mask
from orstream.edge.models.segmenter_model import Prompt
from orstream.errors import OrstreamError
from orstream.labels import ANATOMY
from orstream.results import FrameResult, SegmentationResult
from orstream.streams.frame import Frame

log = logging.getLogger(__name__)


class LiveSegmenter:
    """The segmentation stage of one stream.

    Args:
        prompter: the frame memory and segmenter shared with client prompts.
        rate_hz: frames per second to segment (default the package's ``clip.fps``).
        classes: class names to prompt on every frame (None: automatic, see the module).
        min_score: smallest predicted IoU of a mask that is kept.
        recognized: the stream's latest workflow result, when a recognizer runs.
        port_capacity: capacity of the ``latest`` port into the stage.
    """

    def __init__(
        self,
        prompter: FramePrompter,
        rate_hz: float | None = None,
        classes: Sequence[str] | None = None,
        min_score: float = 0.5,
        recognized: Callable[[], FrameResult | None] | None = None,
        port_capacity: int = 1,
    ) -> None:
        model = prompter.model
        unknown = sorted(set(classes or ()) - set(model.classes))
        if unknown:
            raise OrstreamError(
                f"segmentation classes {', '.join(unknown)} are not in {model.label} "
                f"(known: {', '.join(sorted(model.classes))})"
            )
        self.prompter = prompter
        self.rate_hz = rate_hz or model.rate_hz
        self.classes = tuple(classes) if classes is not None else None
        self.min_score = min_score
        self.recognized = recognized
        self.port: Port[Frame] = Port("segmentation.frames", port_capacity, "latest")
        self.sampler = RateSampler(self.rate_hz)
        self.meter = StageMeter("segmentation")
        self.result_meter = StageMeter("segmentation_to_result")
        self.latest: FrameResult | None = None
        self.state = "serving"
        self.error = ""

    @property
    def label(self) -> str:
        return self.prompter.model.label

    def offer(self, frame: Frame) -> None:
        """Called with every source frame: remembers it and passes the sampled ones on."""
        self.prompter.remember(frame)
        if self.sampler.take(frame):
            self.port.put(frame)

    def close(self) -> None:
        self.port.close()

    def targets(self) -> tuple[str, ...]:
        """The class names to prompt on the next frame."""
        if self.classes is not None:
            return self.classes
        known = self.prompter.model.classes
        if self.recognized is None:
            return tuple(known)
        latest = self.recognized()
        seen = () if latest is None or latest.instruments is None else latest.instruments.names
        anatomy = tuple(name for name in ANATOMY.values() if name in known)
        return tuple(name for name in seen if name in known) + anatomy

    def segment(self, frame: Frame) -> FrameResult:
        """Encode one frame, prompt every target class, keep the confident masks."""
        embedding, _ = self.prompter.embedding(frame)
        model = self.prompter.model
        masks = []
        for name in self.targets():
            prediction = model.segment(embedding, Prompt(text=name))
            if prediction.score >= self.min_score and prediction.mask.any():
                masks.append(segment_mask(prediction, model.classes[name], name))
        masks.sort(key=lambda mask: -mask.score)
        return FrameResult(
            stream_id=frame.stream_id,
            index=frame.index,
            pts_ns=frame.pts_ns,
            capture_ns=frame.capture_ns,
            produced_ns=time.monotonic_ns(),
            models=(self.label,),
            segmentation=SegmentationResult(tuple(masks)),
        )

    def run(self, publish: Callable[[FrameResult], None], on_failure: Callable[[], None]) -> None:
        """The stage's thread: segment sampled frames until the port closes."""
        while True:
            try:
                frame = self.port.get()
            except PortClosed:
                return
            if frame is None or self.state == "failed":
                continue
            start = time.monotonic_ns()
            try:
                result = self.segment(frame)
            except (OrstreamError, ValueError) as error:
                self.state, self.error = "failed", str(error)
                log.error("segmenter %s failed: %s", self.label, error)
                on_failure()
                continue
            self.meter.record_since(start)
            self.result_meter.record(result.latency_ms)
            self.latest = result
            publish(result)
