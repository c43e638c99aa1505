"""From an :class:`EdgeConfig` to a ready :class:`EdgeRuntime`: source, model, overlay, sinks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orstream.edge.app.config import EdgeConfig, PortConfig, SegmentationConfig
from orstream.edge.app.runtime import EdgeRuntime, PortSettings, RuntimeSettings, SinkSpec
from orstream.edge.backends import create_backend
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.operators.live_segmenter import LiveSegmenter
from orstream.edge.operators.pitvis_writer import PitvisResultsWriter, video_number_of
from orstream.edge.overlay import (
    Annotator,
    HudAnnotator,
    MasksAnnotator,
    NoSignalMarker,
    Overlay,
)
from orstream.edge.service.result_hub import ResultHub
from orstream.package.loading import load_package
from orstream.results import FrameResult
from orstream.streams.sinks.display import DisplaySink
from orstream.streams.sinks.mp4_recorder import Mp4Recorder
from orstream.streams.sinks.rtsp_output import RtspOutput
from orstream.streams.sources.open_source import open_source
from orstream.streams.sources.source import Source


def port_settings(port: PortConfig, live: bool, live_policy: str) -> PortSettings:
    """A port's settings; with no policy configured, live paths drop and files wait."""
    policy: Any = port.policy or (live_policy if live else "block")
    return PortSettings(port.capacity, policy)


def sink_specs(config: EdgeConfig) -> list[SinkSpec]:
    """The sinks a config asks for, opened by the runtime on the first frame."""
    specs = []
    if config.record is not None:
        path = config.record.path
        specs.append(SinkSpec("record", lambda w, h, fps: Mp4Recorder(path, w, h, fps)))
    if config.rtsp is not None:
        rtsp = config.rtsp
        specs.append(
            SinkSpec(
                "rtsp",
                lambda w, h, fps: RtspOutput(
                    w, h, fps, port=rtsp.port, path=rtsp.path, host=rtsp.host
                ),
            )
        )
    if config.display.enabled:
        specs.append(SinkSpec("display", lambda w, h, fps: DisplaySink(w, h), display=True))
    return specs


def _overlay(config: EdgeConfig, recognizer: bool, segmenter: bool) -> Overlay | None:
    """The OR overlay: the workflow panels only with a recognizer, the masks only with a
    segmenter (no AI panel that can never fill), the HUD and NO SIGNAL always."""
    if not config.overlay.enabled:
        return None
    if recognizer:
        return Overlay.default()
    annotators: list[Annotator] = [MasksAnnotator()] if segmenter else []
    return Overlay([*annotators, HudAnnotator(), NoSignalMarker()])


def build_runtime(
    config: EdgeConfig,
    hub: ResultHub,
    on_health: Callable[[bool], None] | None = None,
    source: Source | None = None,
) -> EdgeRuntime:
    """Load the model and open the source a config describes (errors before anything runs).

    Args:
        config: the validated config.
        hub: where results go.
        on_health: told whether the runtime is serving.
        source: use this source instead of opening ``config.source.uri``.
    """
    model = None
    if config.model is not None:
        package = load_package(config.model.package)
        backend = create_backend(config.model.backends, package, config.model.device)
        model = WorkflowModel(package, backend, config.model.rate_hz)
    # The segmenter prompts by the recognizer's latest instruments: the runtime holds them.
    holder: list[EdgeRuntime] = []
    segmenter = None
    if config.segmentation is not None:
        segmenter = _live_segmenter(
            config.segmentation,
            (lambda: holder[0].latest) if model is not None else None,
        )
    if source is None:
        source = open_source(
            config.source.uri, stream_id=config.source.stream_id, realtime=config.source.realtime
        )
    live = source.live or config.source.realtime
    model_port = config.model.port if config.model is not None else PortConfig()
    settings = RuntimeSettings(
        video_port=port_settings(config.overlay.port, live, "drop_oldest"),
        inference_port=port_settings(model_port, live, "latest"),
        stale_after_ms=config.overlay.stale_after_ms,
        no_signal_after_ms=config.overlay.no_signal_after_ms,
    )
    results = None
    if config.results is not None:
        video = config.results.video
        if video is None:
            video = video_number_of(config.source.uri)
        results = PitvisResultsWriter(config.results.dir, video)
    runtime = EdgeRuntime(
        source,
        model=model,
        segmenter=segmenter,
        overlay=_overlay(config, model is not None, segmenter is not None),
        sinks=sink_specs(config),
        hub=hub,
        results=results,
        settings=settings,
        on_health=on_health,
    )
    holder.append(runtime)
    return runtime


def _live_segmenter(
    config: SegmentationConfig, recognized: Callable[[], FrameResult | None] | None
) -> LiveSegmenter:
    model = SegmenterModel.load(load_package(config.package), config.device, config.backends)
    prompter = FramePrompter(model, config.keep_frames, config.keep_embeddings)
    return LiveSegmenter(
        prompter,
        rate_hz=config.rate_hz,
        classes=config.classes,
        min_score=config.min_score,
        recognized=recognized,
    )
