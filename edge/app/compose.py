"""The edge app: a config's streams through the shared models, overlays and sinks, as one graph.

:meth:`EdgeApp.compose` is the one place where a frame's path reads, stream by stream::

    source --video (bounded; files wait)--> overlay --video--> sinks (display; without privacy
       |                                       |                  also record, RTSP)
       |                                       |--video--> privacy gate --video--> record, RTSP
       |                                       \\--no_signal--> every sink (live), watched (files)
       |--video (latest, at the model's rate)--> workflow (shared, batched) --results--> overlay,
       |                                 masks -->^   privacy gate, PitVis CSVs, publish (gRPC)
       |      (from segmentation, with a classifier: they name the recognizer's instruments)
       |--video (latest, at the segmenter's rate)--> segmentation (shared) --masks--> overlay,
       |                                                                   publish (gRPC)
       |--video (latest, at the clip rate)--> videotext (shared) --results--> publish (gRPC)
       |                                          (zero-shot steps; clips kept for Search)
       |--video--> hand-off privacy gate --judged--> hand-off clips (with a server: section;
       |           (workflow results too)             clips for HandOff and automatic hand-offs
       |                                              to the outbox, private frames left out)
       '--tap: the segmenter's frame memory (client prompts on recent frames)

A stream without a sink that shows or records its video has no overlay at all: nobody would
see it. The video path never waits for a model: the models' connections keep only the newest
due frame (files played flat out wait instead, so no frame and no inference is lost).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orstream.edge.app.config import EdgeConfig, PortConfig, SourceConfig, per_stream
from orstream.edge.app.handoffs import open_handoffs, schedule_of
from orstream.edge.backends import create_backend
from orstream.edge.backends.batching import prepare_batches
from orstream.edge.graph.graph import Graph
from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.operator import Operator
from orstream.edge.graph.port import Policy
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.mask_naming import MaskNaming
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.edge.models.video_text_model import VideoTextModel
from orstream.edge.models.video_text_runner import VideoTextRunner
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.handoff_clips import HandOffClipsOp
from orstream.edge.operators.overlay import OverlayOp
from orstream.edge.operators.pitvis_writer import PitvisResultsWriter, video_number_of
from orstream.edge.operators.privacy_gate import PrivacyGateOp
from orstream.edge.operators.results import PitvisWriterOp, PublishOp
from orstream.edge.operators.segmentation import SegmentationOp
from orstream.edge.operators.sink import SinkOp, SinkOpener
from orstream.edge.operators.source import SourceOp, UnavailableSource
from orstream.edge.operators.videotext import VideoTextOp
from orstream.edge.operators.workflow import WorkflowOp
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.overlay import Annotator, HudAnnotator, MasksAnnotator, NoSignalMarker, Overlay
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.web.frame_slot import WebFrames
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.package.loading import load_package
from orstream.status import RuntimeStatus, StageStatus
from orstream.streams.sources.open_source import open_source
from orstream.streams.sources.source import Source

if TYPE_CHECKING:
    from orstream.streams.sinks.rtsp_server import RtspServer

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Frame rate given to sinks when a source does not say its own."""

WATCH_S = 0.1
"""How often the watchdog reads the streams' states for health."""

UP = ("starting", "playing")
"""Stream states in which a stream counts as up for health."""

DRAIN_S = 3.0
"""How long the graph may drain after a stop signal (the gRPC server's ``drain_s`` follows)."""


@dataclass(frozen=True)
class SinkSpec:
    """A sink of a stream, opened by its operator on the first frame.

    Attributes:
        kind: what it is (``record``, ``rtsp``, ``display``, ``memory``...).
        open: ``(width, height, fps) -> Sink``.
        watched: people watch it: it also gets NO SIGNAL frames when the source falls silent
            (every sink of a live stream gets them).
        leaves: its video leaves the device (a recording, a network stream): with a privacy
            mode it gets the privacy gate's frames, ``delay_s`` behind the display.
        any_size: it takes frames of any size (a recording starts a new segment); other sinks
            get frames scaled to their first frame's size when the stream's size changes.
    """

    kind: str
    open: SinkOpener
    watched: bool = False
    leaves: bool = False
    any_size: bool = False


@dataclass
class Stream:
    """One stream's operators (those the app composed for it)."""

    source: SourceOp
    overlay: OverlayOp | None = None
    privacy: PrivacyGateOp | None = None
    sinks: list[SinkOp] = field(default_factory=list)
    writer: PitvisWriterOp | None = None
    video_path: StageMeter | None = None
    handoff_gate: PrivacyGateOp | None = None
    handoff_clips: HandOffClipsOp | None = None

    @property
    def stream_id(self) -> str:
        return self.source.stream_id


class EdgeApp:
    """Every stream of a config through the models, overlays and sinks (see the module).

    Loads the models and opens the sources at once, so a bad package or (with one stream) a bad
    source is refused before anything runs; with several streams, a source that cannot be opened
    fails its own stream only (its status says why) and the others run.

    Args:
        config: the validated config.
        hub: where results go for gRPC clients (a new one when not given).
        sources: sources to use instead of opening the config's URIs, by stream id.
        sinks: extra sinks per stream id (e.g. a memory sink in tests and benches).
        workflow: a loaded recognizer to use instead of loading ``config.model``'s package
            (its rate and port settings still come from the config).
        segmenter: likewise, a loaded segmenter instead of ``config.segmentation``'s package.
        on_health: told whether the app is serving: False within ``WATCH_S`` once a model
            has failed or no stream delivers (every source stalled, reconnecting, failed or
            ended); told again only when it changes.
        on_stream_health: told ``(stream_id, up)`` for each stream, and again when it changes.

    With a ``server:`` section the app opens the outbox (:attr:`handoffs`) and starts sending
    with :meth:`start`; whoever runs the app closes it after the last gRPC call
    (``handoffs.close()``), as :func:`~orstream.edge.app.session.run_edge` does.
    """

    def __init__(
        self,
        config: EdgeConfig,
        hub: ResultHub | None = None,
        sources: Mapping[str, Source] | None = None,
        sinks: Mapping[str, list[SinkSpec]] | None = None,
        workflow: WorkflowModel | None = None,
        segmenter: SegmenterModel | None = None,
        on_health: Callable[[bool], None] | None = None,
        on_stream_health: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.config = config
        self.hub = hub if hub is not None else ResultHub()
        self.on_health = on_health
        self.on_stream_health = on_stream_health
        self._told: dict[str, bool] = {}
        self._health_lock = threading.Lock()
        self._watchdog = threading.Thread(target=self._watch, name="edge-watchdog", daemon=True)
        self.interrupted_by: str | None = None
        """What stopped the run before its sources ended (e.g. ``SIGTERM``), if anything."""
        self.drained = True
        """Whether the last run drained completely (False: a stop's drain time ran out)."""
        self.graph = Graph("edge", on_failure=lambda operator: self._health())
        self.streams: dict[str, Stream] = {}
        self.workflow: WorkflowOp | None = None
        self.segmentation: SegmentationOp | None = None
        self.videotext: VideoTextOp | None = None
        self._given_sources = dict(sources or {})
        self._extra_sinks = dict(sinks or {})
        self._given_workflow = workflow
        self._given_segmenter = segmenter
        self._rtsp_server: RtspServer | None = None
        self.web_frames: WebFrames | None = None
        """Each stream's newest overlay frame for the dashboard (with a ``web:`` section)."""
        if config.web is not None:
            self.web_frames = WebFrames(tuple(str(s.stream_id) for s in config.streams))
        self.handoffs: HandOffDesk | None = None
        if config.server is not None:
            self.handoffs = open_handoffs(config.server, self.hub.publish_handoff)
        try:
            self.compose()
        except BaseException:
            if self.handoffs is not None:
                self.handoffs.close()
            raise

    # -- the graph ------------------------------------------------------------------------------

    def compose(self) -> None:
        """Build the graph (the module docstring draws it)."""
        config = self.config
        self.workflow = self._workflow()
        self.segmentation = self._segmentation()
        self.videotext = self._videotext()
        publish = PublishOp(self.hub)
        if self.workflow is not None:
            self.graph.add_flow(self.workflow, publish, "results")
        if self.segmentation is not None:
            self.graph.add_flow(self.segmentation, publish, {"masks": "results"})
        if self.videotext is not None:
            self.graph.add_flow(self.videotext, publish, "results")
        for stream_config in config.streams:
            stream = self._open_stream(stream_config)
            source, stream_id = stream.source, stream.stream_id
            live = source.source.live or stream_config.realtime
            self.graph.add_operator(source)
            if self.workflow is not None:
                model_port = config.model.port if config.model is not None else PortConfig()
                capacity, policy = port_settings(model_port, live, "latest")
                self.graph.add_flow(
                    source, self.workflow, {"video": "frames"}, capacity=capacity, policy=policy
                )
            if self.segmentation is not None:
                self.graph.add_flow(source, self.segmentation, {"video": "frames"})
                self.graph.add_tap(source, "video", self.segmentation.prompter.remember)
                if self.workflow is not None and self.workflow.naming is not None:
                    # The live masks name the instruments of the recognizer's next results.
                    self.graph.add_flow(
                        self.segmentation, self.workflow, "masks", stream_id=stream_id
                    )
            if self.videotext is not None:
                self.graph.add_flow(source, self.videotext, {"video": "frames"})
            self._video_path(stream, stream_config, live)
            self._handoff_path(stream, live)
            if config.results is not None and self.workflow is not None:
                folder = per_stream(
                    str(config.results.dir), stream_id, len(config.streams) > 1, "folder"
                )
                video = config.results.video or video_number_of(stream_config.uri)
                stream.writer = PitvisWriterOp(stream_id, PitvisResultsWriter(Path(folder), video))
                self.graph.add_flow(self.workflow, stream.writer, "results", stream_id=stream_id)
            self.streams[stream_id] = stream

    def _video_path(self, stream: Stream, stream_config: SourceConfig, live: bool) -> None:
        """Overlay and sinks of one stream, when it has sinks."""
        stream_id = stream.stream_id
        specs = self._sink_specs(stream_id) + self._extra_sinks.get(stream_id, [])
        if not specs:
            return
        config = self.config
        stream.video_path = StageMeter(f"{stream_id}.video_path")
        upstream: Operator = stream.source
        capacity, policy = port_settings(config.overlay.port, live, "drop_oldest")
        if config.overlay.enabled:
            stream.overlay = OverlayOp(
                stream_id,
                _overlay(self.workflow is not None, self.segmentation is not None),
                result_interval_s=None
                if self.workflow is None
                else 1 / self.workflow.model.rate_hz,
                masks_interval_s=(
                    None if self.segmentation is None else 1 / self.segmentation.rate_hz
                ),
                stale_after_ms=config.overlay.stale_after_ms,
                no_signal_after_ms=config.overlay.no_signal_after_ms,
                privacy=None if config.privacy is None else config.privacy.mode,
            )
            self.graph.add_flow(
                stream.source, stream.overlay, "video", capacity=capacity, policy=policy
            )
            if self.workflow is not None:
                self.graph.add_flow(self.workflow, stream.overlay, "results", stream_id=stream_id)
            if self.segmentation is not None:
                self.graph.add_flow(self.segmentation, stream.overlay, "masks", stream_id=stream_id)
            upstream = stream.overlay
        fps = float(getattr(stream.source.source, "fps", None) or DEFAULT_FPS)
        sink_policy: Policy = "drop_oldest" if live else "block"
        no_signal = live or any(spec.watched and spec.leaves for spec in specs)
        gate = self._privacy_gate(stream, upstream, sink_policy, no_signal, fps)
        for spec in specs:
            sink = SinkOp(
                stream_id, spec.kind, spec.open, fps, stream.video_path, any_size=spec.any_size
            )
            if spec.leaves and gate is not None:  # NO SIGNAL frames come through the gate
                self.graph.add_flow(gate, sink, "video", policy=sink_policy)
            else:
                self.graph.add_flow(upstream, sink, "video", policy=sink_policy)
                if (spec.watched or live) and stream.overlay is not None:
                    self.graph.add_flow(stream.overlay, sink, "no_signal")
            stream.sinks.append(sink)

    def _privacy_gate(
        self, stream: Stream, upstream: Operator, policy: Policy, no_signal: bool, fps: float
    ) -> PrivacyGateOp | None:
        """The stream's privacy gate, fed the overlay's video (and NO SIGNAL frames, when
        ``no_signal``) and every result of the stream (with a privacy mode; the config makes
        sure there is a recognizer and an overlay)."""
        privacy = self.config.privacy
        if privacy is None or self.workflow is None or stream.overlay is None:
            return None
        stream.privacy = PrivacyGateOp(
            stream.stream_id,
            privacy.mode,
            result_interval_s=1 / self.workflow.model.rate_hz,
            stale_after_ms=self.config.overlay.stale_after_ms,
            delay_s=privacy.delay_s,
            # delay_s of video at the stream's rate, and some slack: frames beyond it are
            # judged early rather than held (each is a full picture).
            max_held=math.ceil(fps * privacy.delay_s) + 8,
        )
        self.graph.add_flow(upstream, stream.privacy, "video", policy=policy)
        if no_signal:
            self.graph.add_flow(stream.overlay, stream.privacy, {"no_signal": "video"})
        self.graph.add_flow(self.workflow, stream.privacy, "results", stream_id=stream.stream_id)
        return stream.privacy

    def _handoff_path(self, stream: Stream, live: bool) -> None:
        """The stream's own privacy gate on its source's frames (hand-off clips carry the
        picture without the overlay), judged by every result of the stream, into the clips
        that hand-offs are cut from; with a ``server:`` section (the config makes sure there
        is a recognizer)."""
        server = self.config.server
        if server is None or self.handoffs is None or self.workflow is None:
            return
        stream_id = stream.stream_id
        privacy = self.config.privacy
        delay_s = privacy.delay_s if privacy is not None else 2.0
        fps = float(getattr(stream.source.source, "fps", None) or DEFAULT_FPS)
        policy: Policy = "drop_oldest" if live else "block"
        stream.handoff_gate = PrivacyGateOp(
            stream_id,
            "blank",
            result_interval_s=1 / self.workflow.model.rate_hz,
            stale_after_ms=self.config.overlay.stale_after_ms,
            delay_s=delay_s,
            max_held=math.ceil(fps * delay_s) + 8,
            name=f"{stream_id}.handoff_privacy",
        )
        stream.handoff_clips = HandOffClipsOp(
            stream_id, self.handoffs, schedule_of(server, stream_id)
        )
        self.graph.add_flow(stream.source, stream.handoff_gate, "video", policy=policy)
        self.graph.add_flow(self.workflow, stream.handoff_gate, "results", stream_id=stream_id)
        self.graph.add_flow(stream.handoff_gate, stream.handoff_clips, "judged", policy=policy)

    def record_path(self, stream_id: str) -> Path:
        """Where the stream's recording goes (``--record`` must be set)."""
        assert self.config.record is not None
        several = len(self.config.streams) > 1
        return Path(per_stream(str(self.config.record.path), stream_id, several, "file"))

    def _sink_specs(self, stream_id: str) -> list[SinkSpec]:
        # GStreamer's sinks are imported only when a config asks for one: an app fed from
        # memory (the GPU bench) runs where GStreamer is not installed.
        config = self.config
        several = len(config.streams) > 1
        specs = []
        if config.record is not None:
            from orstream.streams.sinks.recording import Recording

            path = self.record_path(stream_id)
            if not path.parent.is_dir():  # now, not once the first frame came
                raise OrstreamError(f"{path}: folder {path.parent} does not exist")
            rotation = config.record.rotation()
            specs.append(
                SinkSpec(
                    "record",
                    lambda w, h, fps: Recording(path, fps, rotation),
                    leaves=True,
                    any_size=True,
                )
            )
        if config.rtsp is not None:
            from orstream.streams.sinks.rtsp_output import RtspOutput

            server = self._rtsp()
            mount = config.rtsp.path.rstrip("/") + f"/{stream_id}" if several else config.rtsp.path
            specs.append(
                SinkSpec(
                    "rtsp",
                    lambda w, h, fps: RtspOutput(w, h, fps, server=server, path=mount),
                    watched=True,
                    leaves=True,
                )
            )
        if self.web_frames is not None:
            # Watched like the display, and like it kept on the device's side of the privacy
            # gate: the dashboard is an OR screen (behind the API's tokens), not a recording.
            web_sink = self.web_frames.sink(stream_id)
            specs.append(SinkSpec("web", lambda w, h, fps: web_sink, watched=True))
        if config.display.enabled:
            from orstream.streams.sinks.display import DisplaySink

            settings = config.display.settings()
            specs.append(
                SinkSpec("display", lambda w, h, fps: DisplaySink(w, h, settings), watched=True)
            )
        return specs

    def _rtsp(self) -> RtspServer:
        """One RTSP server for every stream's output (a mount each)."""
        from orstream.streams.sinks.rtsp_server import RtspServer

        if self._rtsp_server is None:
            assert self.config.rtsp is not None
            self._rtsp_server = RtspServer(self.config.rtsp.port, self.config.rtsp.host)
        return self._rtsp_server

    def _open_stream(self, stream_config: SourceConfig) -> Stream:
        stream_id = stream_config.stream_id
        assert stream_id is not None  # config.streams fills it in
        source = self._given_sources.get(stream_id)
        if source is not None and source.stream_id != stream_id:
            raise OrstreamError(
                f"the source given for stream {stream_id!r} delivers stream {source.stream_id!r}"
            )
        if source is None:
            try:
                source = open_source(
                    stream_config.uri,
                    stream_id=stream_id,
                    realtime=stream_config.realtime,
                    reconnect=stream_config.reconnect.backoff(),
                )
            except OrstreamError as error:
                if len(self.config.streams) == 1:
                    raise
                log.error("stream %s: %s", stream_id, error)
                source = UnavailableSource(stream_config.uri, stream_id, str(error))
        if self.config.web is not None and self.config.web.latency_stamps is not None:
            from orstream.edge.web.stamped_source import StampedSource

            source = StampedSource(source, self.config.web.latency_stamps)
        return Stream(SourceOp(source, stalled_after_s=stream_config.stalled_after_ms / 1e3))

    def _workflow(self) -> WorkflowOp | None:
        config = self.config.model
        if config is None:
            return None
        naming = MaskNaming() if self.config.mask_instruments else None
        if self._given_workflow is not None:
            return WorkflowOp(self._given_workflow, naming)
        package = load_package(config.package)
        backend = create_backend(config.backends, package, config.device)
        prepare_batches(backend, package)
        return WorkflowOp(WorkflowModel(package, backend, config.rate_hz), naming)

    def _segmentation(self) -> SegmentationOp | None:
        config = self.config.segmentation
        if config is None:
            return None
        model = self._given_segmenter
        if model is None:
            package = load_package(config.package)
            model = SegmenterModel.load(package, config.device, config.backends)
            prepare_batches(model.encoder, package)
        classifier = None
        if config.classifier is not None:
            classifier = InstrumentClassifier.load(
                load_package(config.classifier), config.device, config.backends
            )
            prepare_batches(classifier.backend, classifier.package)
        prompter = FramePrompter(model, config.keep_frames, config.keep_embeddings)
        masks = LiveMasks(
            model, classifier, config.classes, config.min_score, config.min_confidence
        )
        return SegmentationOp(prompter, masks, config.rate_hz)

    def _videotext(self) -> VideoTextOp | None:
        config = self.config.videotext
        if config is None:
            return None
        package = load_package(config.package)
        runner = VideoTextRunner.load(package, config.device, config.backends)
        prepare_batches(runner.clip_backend, package)
        return VideoTextOp(VideoTextModel(runner, config.rate_hz, config.keep_s))

    # -- running --------------------------------------------------------------------------------

    def start(self) -> None:
        """Check what can be checked before frames flow, start the graph; returns at once."""
        if self.config.display.enabled:
            from orstream.streams.sinks.display import session_name

            session_name()  # no display to show on is one clear error now, not at the first frame
        # What loading made (the libraries, the models: about 200 000 objects) never changes:
        # frozen, the collector's full passes skip it, and stop the world for milliseconds
        # rather than the 50-100 ms they took while frames flowed.
        gc.freeze()
        if self.handoffs is not None:
            self.handoffs.start()
        self.graph.start()
        self._health()
        self._watchdog.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.graph.wait(timeout_s)

    def stop(self) -> bool:
        return self.graph.stop()

    def close(self) -> None:
        """After the run: health off, the shared RTSP server down."""
        if self.on_health is not None:
            self.on_health(False)
        if self._rtsp_server is not None:
            self._rtsp_server.close()

    def interrupt(self, reason: str, drain_s: float = DRAIN_S) -> None:
        """Stop the run before its sources end (safe from a signal handler; returns at once):
        health goes NOT_SERVING first, then the sources stop and :meth:`run` drains the graph,
        for at most ``drain_s``, so recordings are finalised, CSVs flushed and subscriber
        streams ended before the gRPC server's own drain."""
        self.interrupted_by = self.interrupted_by or reason
        if self.on_health is not None:
            self.on_health(False)
        self.graph.request_stop(drain_s)

    def run(self) -> None:
        """Start, run every stream to its end (or until :meth:`interrupt`, or Ctrl-C), close.
        A stream whose source or a sink fails does not stop the others; :meth:`failures` says
        what failed."""
        self.start()
        try:
            self.drained = self.graph.join()
        finally:
            self.close()

    def failures(self) -> list[str]:
        """One line per source or sink that failed (models failing turn health off and are in
        the status; the video went on without them)."""
        return [
            f"{op.name}: {op.error}"
            for op in self.graph.operators.values()
            if op.state == "failed" and isinstance(op, SourceOp | SinkOp)
        ]

    @property
    def video_text(self) -> VideoTextModel | None:
        """What answers gRPC searches and prompt changes (None without a video-text model)."""
        return None if self.videotext is None else self.videotext.model

    @property
    def prompter(self) -> FramePrompter | None:
        """What answers gRPC prompts (None without a segmenter)."""
        return None if self.segmentation is None else self.segmentation.prompter

    def _watch(self) -> None:
        """The watchdog: health follows the streams' states (a stall, a lost feed) at once."""
        while not self.graph.wait(WATCH_S):
            self._health()

    def _health(self) -> None:
        """Tell the health callbacks what changed (nothing once the run is being stopped)."""
        if self.interrupted_by is not None:
            return
        with self._health_lock:
            up = {stream_id: s.source.stream_state() in UP for stream_id, s in self.streams.items()}
            models = [
                op for op in (self.workflow, self.segmentation, self.videotext) if op is not None
            ]
            serving = not any(op.state == "failed" for op in models) and any(up.values())
            for stream_id, stream_up in up.items():
                if self.on_stream_health is not None and self._told.get(stream_id) != stream_up:
                    self.on_stream_health(stream_id, stream_up)
                    self._told[stream_id] = stream_up
            if self.on_health is not None and self._told.get("") != serving:
                self.on_health(serving)
                self._told[""] = serving

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> RuntimeStatus:
        """A snapshot for ``GetStatus``, progress lines and the benches."""
        streams = list(self.streams)
        models = []
        if self.workflow is not None:
            models += self.workflow.model_status(streams)
        if self.segmentation is not None:
            models += self.segmentation.model_status(streams)
        if self.videotext is not None:
            models += self.videotext.model_status(streams)
        stages = []
        for op, status in zip(self.graph.operators.values(), self.graph.status(), strict=True):
            # A source's own drops: frames a live source skipped because nobody kept up.
            dropped = op.dropped if isinstance(op, SourceOp) else status.dropped
            stages.append(
                StageStatus(
                    status.name,
                    status.latency,
                    status.processed,
                    dropped,
                    status.state,
                    status.error,
                )
            )
        for stream in self.streams.values():
            if stream.video_path is not None:
                stages.append(
                    StageStatus(
                        f"{stream.stream_id}.video_path",
                        stream.video_path.summary(),
                        self.frames_out(stream.stream_id),
                        self.video_dropped(stream.stream_id),
                    )
                )
        return RuntimeStatus(
            sources=tuple(stream.source.stream_status() for stream in self.streams.values()),
            models=tuple(models),
            stages=tuple(stages),
            frame_to_result=self.frame_to_result(),
            video_frames_in=sum(stream.source.frames_in for stream in self.streams.values()),
            video_frames_out=sum(self.frames_out(stream) for stream in self.streams),
            uptime_s=self.graph.uptime_s(),
        )

    @property
    def stale_after_s(self) -> float | None:
        """Age after which the recognizer's result is stale, by the overlay's rule (None: no
        recognizer)."""
        if self.workflow is None:
            return None
        return 1 / self.workflow.model.rate_hz + self.config.overlay.stale_after_ms / 1e3

    def frame_to_result(self, stream_id: str | None = None) -> LatencySummary:
        """Frame-to-result latency of the recognizer, of one stream or of all."""
        if self.workflow is None:
            return LatencySummary.of([])
        return self.workflow.latency(stream_id)

    def frames_out(self, stream_id: str) -> int:
        """Frames of a stream that left its video path: taken by every one of its sinks."""
        sinks = self.streams[stream_id].sinks
        return min((sink.written for sink in sinks), default=0)

    def video_dropped(self, stream_id: str) -> int:
        """Frames the stream's video path lost: skipped by a live source or dropped by the
        overlay's or a sink's queue."""
        stream = self.streams[stream_id]
        ops: list[Operator] = [*stream.sinks]
        if stream.overlay is not None:
            ops.append(stream.overlay)
        queued = sum(c.dropped for op in ops for c in op.inputs.get("video", []))
        return stream.source.dropped + queued


def port_settings(port: PortConfig, live: bool, live_policy: Policy) -> tuple[int, Policy]:
    """A port's capacity and policy; with no policy configured, live paths drop and files
    wait."""
    policy: Any = port.policy or (live_policy if live else "block")
    return port.capacity, policy


def _overlay(recognizer: bool, segmenter: bool) -> Overlay:
    """The OR overlay: the workflow panels only with a recognizer, the masks only with a
    segmenter (no AI panel that can never fill), the HUD and NO SIGNAL always."""
    if recognizer:
        return Overlay.default()
    annotators: list[Annotator] = [MasksAnnotator()] if segmenter else []
    return Overlay([*annotators, HudAnnotator(), NoSignalMarker()])
