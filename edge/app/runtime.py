"""The edge runtime: one live stream through inference, overlay and sinks.

Threads joined by bounded :class:`~orstream.edge.graph.port.Port` s:

    source --video port--> overlay -> sinks (record, RTSP, display, memory)   the video path
       |--inference port--> workflow model -> results (hub/gRPC, CSVs, overlay's latest)
       \\--segmentation port--> live segmenter -> masks (hub/gRPC, overlay's latest masks)

The source thread hands every frame to the video port and, at the model's rate, a frame to
the inference port (the segmenter samples at its own rate). The video path never waits for
inference: the overlay draws the latest
result there is and marks it stale once it is older than the model's interval plus
``stale_after_ms``; a model that is ten times too slow only makes its results rarer and
stale. When the source falls silent, the display sinks keep getting the last frame with a
NO SIGNAL marker, so an OR screen never freezes on an old picture without saying so.

A model that fails stops its inference and turns health NOT_SERVING; the video keeps
flowing. A source that fails or ends stops the run; whatever was inferred is kept.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from orstream.edge.graph.meters import RateMeter, StageMeter
from orstream.edge.graph.port import Policy, Port, PortClosed
from orstream.edge.graph.rate_sampler import RateSampler
from orstream.edge.graph.status import ModelStatus, RuntimeStatus, SourceStatus, StageStatus
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.live_segmenter import LiveSegmenter
from orstream.edge.operators.pitvis_writer import PitvisResultsWriter
from orstream.edge.overlay import Overlay, OverlayContext
from orstream.edge.service.result_hub import ResultHub
from orstream.errors import OrstreamError
from orstream.results import FrameResult
from orstream.streams.frame import Frame
from orstream.streams.sinks.sink import Sink
from orstream.streams.sources.source import Source

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Frame rate given to sinks when the source does not say its own."""


@dataclass(frozen=True)
class SinkSpec:
    """A sink the runtime opens once the first frame tells it the picture size.

    Attributes:
        name: the sink's stage name (``sink.<name>``).
        open: ``(width, height, fps) -> Sink``.
        display: the sink shows video to people: it gets NO SIGNAL frames when the source
            falls silent.
    """

    name: str
    open: Callable[[int, int, float], Sink]
    display: bool = False


@dataclass(frozen=True)
class PortSettings:
    """Capacity and drop policy of one port."""

    capacity: int
    policy: Policy


@dataclass(frozen=True)
class RuntimeSettings:
    """How the runtime trades completeness against latency.

    Attributes:
        video_port: the port into the overlay (``block`` plays files without losing a frame;
            ``drop_oldest`` keeps a live path's latency bounded).
        inference_port: the port into the model (``latest`` on live paths: a slow model
            infers the newest frame, never a backlog).
        stale_after_ms: a result is stale once older than the model's interval plus this.
        no_signal_after_ms: silence from the source after which display sinks get NO SIGNAL.
    """

    video_port: PortSettings = PortSettings(24, "drop_oldest")
    inference_port: PortSettings = PortSettings(1, "latest")
    stale_after_ms: float = 250.0
    no_signal_after_ms: float = 1000.0


class EdgeRuntime:
    """Runs one source through an optional workflow model, an optional overlay and sinks.

    Args:
        source: where frames come from.
        model: the workflow model of the stream (None: no step and instrument results).
        segmenter: live segmentation of the stream (None: no masks).
        overlay: draws results on the video (None: sinks get the source's frames).
        sinks: every video-path frame is written to each of these, in order; they open on
            the first frame.
        hub: results go here for gRPC clients (and it keeps the step timeline).
        results: PitVis CSV writer of the stream, flushed at the end.
        settings: ports and ages, see :class:`RuntimeSettings`.
        on_health: called with False when a source or model fails, True when serving.
    """

    def __init__(
        self,
        source: Source,
        *,
        model: WorkflowModel | None = None,
        segmenter: LiveSegmenter | None = None,
        overlay: Overlay | None = None,
        sinks: Sequence[SinkSpec] = (),
        hub: ResultHub | None = None,
        results: PitvisResultsWriter | None = None,
        settings: RuntimeSettings = RuntimeSettings(),
        on_health: Callable[[bool], None] | None = None,
    ) -> None:
        self.source = source
        self.model = model
        self.segmenter = segmenter
        self.overlay = overlay
        self.sink_specs = tuple(sinks)
        self.sinks: list[Sink] = []
        self.hub = hub if hub is not None else ResultHub()
        self.results = results
        self.settings = settings
        self.on_health = on_health
        self.video_port: Port[Frame] = Port(
            "overlay.video", settings.video_port.capacity, settings.video_port.policy
        )
        self.inference_port: Port[Frame] = Port(
            "inference.frames", settings.inference_port.capacity, settings.inference_port.policy
        )
        self.source_meter = StageMeter("source")
        self.inference_meter = StageMeter("inference")
        self.overlay_meter = StageMeter("overlay")
        self.sink_meters = [StageMeter(f"sink.{spec.name}") for spec in self.sink_specs]
        self.video_meter = StageMeter("video_path")
        self.result_meter = StageMeter("frame_to_result")
        self.video_rate = RateMeter()
        self.source_rate = RateMeter()
        self.frames_in = 0
        self.frames_out = 0
        self.frames_stale = 0
        self.source_state = "starting"
        self.source_error = ""
        self.model_state = "serving" if model is not None else ""
        self.model_error = ""
        self.video_error = ""
        self.latest: FrameResult | None = None
        self._started_ns = time.monotonic_ns()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads; returns at once."""
        self._started_ns = time.monotonic_ns()
        workers: list[tuple[str, Callable[[], None]]] = [
            ("orstream-source", self._source_loop),
            ("orstream-video", self._video_loop),
        ]
        if self.model is not None:
            workers.append(("orstream-inference", self._inference_loop))
        if self.segmenter is not None:
            segmenter = self.segmenter
            workers.append(
                (
                    "orstream-segmentation",
                    lambda: segmenter.run(self.hub.publish, lambda: self._health(False)),
                )
            )
        for name, target in workers:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._health(True)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the stream to end; True once every thread finished."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if thread.is_alive():
                return False
        return True

    def stop(self) -> None:
        """Stop the source and let the rest drain (bounded)."""
        self._stop.set()
        self.source.close()
        self.wait(10.0)

    def close(self) -> None:
        """Flush and close sinks and results; call once after the run."""
        self._health(False)
        for sink in self.sinks:
            sink.close()
        if self.results is not None:
            self.results.write()

    def run(self) -> None:
        """Start, wait for the end of the stream (or Ctrl-C), then close everything.

        Raises:
            OrstreamError: the source failed (the results so far are still written).
        """
        self.start()
        try:
            while not self.wait(0.2):
                pass
        except KeyboardInterrupt:
            log.info("stopping on interrupt")
            self.stop()
        finally:
            self.close()
        if self.source_state == "failed":
            raise OrstreamError(self.source_error)
        if self.video_error:
            raise OrstreamError(self.video_error)

    # -- threads ----------------------------------------------------------------------------

    def _source_loop(self) -> None:
        sampler = RateSampler(self.model.rate_hz) if self.model is not None else None
        try:
            frames = iter(self.source.frames())
            while not self._stop.is_set():
                asked = time.monotonic_ns()
                frame = next(frames, None)
                if frame is None:
                    break
                # How long the source took to hand over a frame: decoding (or pacing, live).
                self.source_meter.record_since(asked)
                self.source_state = "playing"
                self.frames_in += 1
                self.source_rate.tick(frame.capture_ns)
                self.video_port.put(frame)
                if sampler is not None and sampler.take(frame):
                    self.inference_port.put(frame)
                if self.segmenter is not None:
                    self.segmenter.offer(frame)
            if self.source_state != "failed":
                self.source_state = "ended"
        except OrstreamError as error:
            self.source_state, self.source_error = "failed", str(error)
            log.error("source %s failed: %s", self.source.uri, error)
            self._health(False)
        finally:
            self.video_port.close()
            self.inference_port.close()
            if self.segmenter is not None:
                self.segmenter.close()

    def _inference_loop(self) -> None:
        assert self.model is not None
        while True:
            try:
                frame = self.inference_port.get()
            except PortClosed:
                return
            if frame is None or self.model_state == "failed":
                continue
            start = time.monotonic_ns()
            try:
                result = self.model.infer(frame)
            except OrstreamError as error:
                self.model_state, self.model_error = "failed", str(error)
                log.error("model %s failed: %s", self.model.label, error)
                self._health(False)
                continue
            self.inference_meter.record_since(start)
            self.result_meter.record(result.latency_ms)
            self.latest = result
            self.hub.publish(result)
            if self.results is not None:
                self.results.add(result)

    def _video_loop(self) -> None:
        wait_s = self.settings.no_signal_after_ms / 1e3
        last: Frame | None = None
        while True:
            try:
                frame = self.video_port.get(wait_s)
            except PortClosed:
                return
            if frame is None:
                if last is not None:
                    self._show_no_signal(last)
                continue
            if last is None and not self._open_sinks(frame):
                return
            last = frame
            start = time.monotonic_ns()
            shown = frame
            if self.overlay is not None:
                context = self._context(frame, False)
                self.frames_stale += context.stale
                image = self.overlay.draw(np.asarray(frame.image), context)
                shown = replace(frame, image=image)
                self.overlay_meter.record_since(start)
            for sink, meter in zip(self.sinks, self.sink_meters, strict=True):
                began = time.monotonic_ns()
                sink.write(shown)
                meter.record_since(began)
            self.frames_out += 1
            self.video_rate.tick()
            self.video_meter.record_since(frame.capture_ns)

    def _open_sinks(self, first: Frame) -> bool:
        height, width = np.asarray(first.image).shape[:2]
        fps = float(getattr(self.source, "fps", None) or DEFAULT_FPS)
        try:
            for spec in self.sink_specs:
                self.sinks.append(spec.open(width, height, fps))
        except OrstreamError as error:
            self.video_error = str(error)
            log.error("cannot open the sinks: %s", error)
            self._stop.set()
            self.source.close()
            self.video_port.close()
            return False
        return True

    def _show_no_signal(self, last: Frame) -> None:
        displays = [
            sink for sink, spec in zip(self.sinks, self.sink_specs, strict=False) if spec.display
        ]
        if not displays:
            return
        image = np.asarray(last.image)
        if self.overlay is not None:
            image = self.overlay.draw(image, self._context(last, True))
        for sink in displays:
            sink.write(replace(last, image=image))

    # -- what the overlay and the status see --------------------------------------------------

    def _context(self, frame: Frame, no_signal: bool) -> OverlayContext:
        now_ns = time.monotonic_ns()
        latest = self.latest
        timeline: tuple = ()
        age_ms = 0.0
        stale = False
        if latest is not None:
            age_ms = (now_ns - latest.produced_ns) / 1e6
            assert self.model is not None
            stale = age_ms > 1e3 / self.model.rate_hz + self.settings.stale_after_ms
            if stale:
                latest = replace(latest, stale=True)
            try:
                timeline = self.hub.timeline(frame.stream_id)
            except KeyError:
                timeline = ()
        masks = self.segmenter.latest if self.segmenter is not None else None
        masks_stale = False
        if masks is not None:
            assert self.segmenter is not None
            masks_age_ms = (now_ns - masks.produced_ns) / 1e6
            limit_ms = 1e3 / self.segmenter.rate_hz + self.settings.stale_after_ms
            masks_stale = masks_age_ms > limit_ms
        return OverlayContext(
            result=latest,
            stale=stale,
            result_age_ms=age_ms,
            timeline=timeline,
            frame_pts_ns=frame.pts_ns,
            fps=self.video_rate.rate(),
            latency_ms=latest.latency_ms if latest is not None else math.nan,
            no_signal=no_signal,
            segmentation=masks,
            segmentation_stale=masks_stale,
        )

    def _health(self, serving: bool) -> None:
        if self.on_health is None:
            return
        failed = self.source_state == "failed" or self.model_state == "failed"
        failed = failed or (self.segmenter is not None and self.segmenter.state == "failed")
        self.on_health(serving and not failed)

    def status(self) -> RuntimeStatus:
        """A snapshot for ``GetStatus`` and the bench."""
        source = SourceStatus(
            stream_id=self.source.stream_id,
            uri=self.source.uri,
            state=self.source_state,
            fps=self.source_rate.rate(),
            frames_in=self.frames_in,
            error=self.source_error,
        )
        models: tuple[ModelStatus, ...] = ()
        if self.model is not None:
            card = self.model.package.card
            models = (
                ModelStatus(
                    name=card.name,
                    version=card.version,
                    stream_id=self.source.stream_id,
                    backend=self.model.backend.label,
                    rate_hz=self.model.rate_hz,
                    state=self.model_state,
                    inferred=self.inference_meter.processed,
                    error=self.model_error,
                    backend_reason=getattr(self.model.backend, "selection", ""),
                ),
            )
        if self.segmenter is not None:
            segmenter = self.segmenter.prompter.model
            card = segmenter.package.card
            models += (
                ModelStatus(
                    name=card.name,
                    version=card.version,
                    stream_id=self.source.stream_id,
                    backend=segmenter.encoder.label,
                    rate_hz=self.segmenter.rate_hz,
                    state=self.segmenter.state,
                    inferred=self.segmenter.meter.processed,
                    error=self.segmenter.error,
                    backend_reason=segmenter.selection,
                ),
            )
        return RuntimeStatus(
            sources=(source,),
            models=models,
            stages=self.stage_status(),
            frame_to_result=self.result_meter.summary(),
            video_frames_in=self.frames_in,
            video_frames_out=self.frames_out,
            uptime_s=(time.monotonic_ns() - self._started_ns) / 1e9,
        )

    def stage_status(self) -> tuple[StageStatus, ...]:
        """Per stage: latency per item, items handled, items its input port dropped."""
        source_dropped = int(getattr(self.source, "dropped", 0))
        stages = [
            StageStatus("source", self.source_meter.summary(), self.frames_in, source_dropped)
        ]
        if self.model is not None:
            stages.append(
                StageStatus(
                    "inference",
                    self.inference_meter.summary(),
                    self.inference_meter.processed,
                    self.inference_port.dropped,
                )
            )
        if self.segmenter is not None:
            meter = self.segmenter.meter
            stages.append(
                StageStatus(
                    meter.name, meter.summary(), meter.processed, self.segmenter.port.dropped
                )
            )
        stages.append(
            StageStatus(
                "overlay",
                self.overlay_meter.summary(),
                self.overlay_meter.processed,
                self.video_port.dropped,
            )
        )
        for meter in self.sink_meters:
            stages.append(StageStatus(meter.name, meter.summary(), meter.processed, 0))
        stages.append(
            StageStatus(
                "video_path",
                self.video_meter.summary(),
                self.frames_out,
                self.video_port.dropped,
            )
        )
        return tuple(stages)
