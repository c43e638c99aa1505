"""One run of the edge runtime with its gRPC API: what ``orstream edge run`` and the demo do."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orstream.access.exposure import is_loopback
from orstream.access.server_tls import ServerTls
from orstream.access.tokens import Tokens
from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import EdgeConfig
from orstream.edge.operators.sink import SinkOp
from orstream.edge.service.audit import AuditLog
from orstream.edge.service.server import EdgeGrpcServer
from orstream.status import RuntimeStatus
from orstream.stop_signals import StopSignals
from orstream.streams.sources.source import Source

if TYPE_CHECKING:
    from orstream.edge.web.web_server import WebDashboard

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class EdgeRunReport:
    """How a run went: the final status and where the gRPC API listened (0: it did not)."""

    status: RuntimeStatus
    grpc_port: int
    wall_s: float
    failures: tuple[str, ...] = ()
    """One line per source or sink that failed (the other streams ran to their end)."""
    interrupted_by: str | None = None
    """The signal that stopped the run before its sources ended (None: they ended)."""
    drained: bool = True
    """False when the graph did not drain within its time after a stop."""
    recordings: tuple[Path, ...] = ()
    """Every recording file written (segments in order, every stream)."""


def describe_status(status: RuntimeStatus) -> str:
    """A multi-line report of a run: streams, models, frame-to-result latency, stages."""
    lines = []
    for source in status.sources:
        lines.append(
            f"source {source.stream_id} ({source.uri}): {source.state}, "
            f"{source.frames_in} frames" + (f", error: {source.error}" if source.error else "")
        )
    for model in status.models:
        lines.append(
            f"model {model.name}@{model.version} on {model.stream_id}: {model.backend}, "
            f"{model.rate_hz:g} Hz, {model.inferred} frames inferred, {model.state}"
            + (f", error: {model.error}" if model.error else "")
        )
    lines.append(f"frame-to-result latency: {status.frame_to_result.describe()}")
    lines.append(
        f"video frames in {status.video_frames_in}, out {status.video_frames_out}; "
        f"per stage (time per item, items, dropped):"
    )
    for stage in status.stages:
        latency = stage.latency
        timing = (
            f"p50 {latency.p50:7.2f} ms  p99 {latency.p99:7.2f} ms  "
            f"p99.9 {latency.p999:7.2f} ms  max {latency.max:7.2f} ms"
            if latency.count
            else f"{'(not timed)':<58}"
        )
        lines.append(
            f"  {stage.name:<24} {timing}  items {stage.processed:>7}  dropped {stage.dropped}"
        )
    return "\n".join(lines)


def _progress(app: EdgeApp, stop: threading.Event, say: Callable[[str], None]) -> None:
    while not stop.wait(PROGRESS_EVERY_S):
        status = app.status()
        latency = status.frame_to_result
        results = (
            f", frame-to-result p50 {latency.p50:.1f} ms p99 {latency.p99:.1f} ms"
            if latency.count
            else ""
        )
        streams = ", ".join(
            f"{source.stream_id} {source.state} {source.fps:.1f} fps" for source in status.sources
        )
        say(
            f"{status.uptime_s:5.0f} s: {status.video_frames_in} frames in, "
            f"{status.video_frames_out} out ({streams}){results}"
        )


def say_stderr(message: str) -> None:
    print(f"edge: {message}", file=sys.stderr, flush=True)


def _recordings(app: EdgeApp) -> list[tuple[str, SinkOp]]:
    return [
        (stream_id, sink)
        for stream_id, stream in app.streams.items()
        for sink in stream.sinks
        if sink.kind == "record"
    ]


def _audit_start(audit: AuditLog, app: EdgeApp) -> None:
    """The models loaded (once each) and the recordings about to start."""
    seen = set()
    for model in app.status().models:
        if (model.name, model.version) not in seen:
            seen.add((model.name, model.version))
            audit.record(
                "model_loaded",
                model=model.name,
                version=model.version,
                backend=model.backend,
                why=model.backend_reason,
            )
    for stream_id, _ in _recordings(app):
        audit.record("recording_started", stream=stream_id, path=str(app.record_path(stream_id)))


def _audit_end(audit: AuditLog, app: EdgeApp) -> None:
    """How each recording ended."""
    for stream_id, sink in _recordings(app):
        path = str(app.record_path(stream_id))
        if sink.state == "failed":
            audit.record("recording_failed", stream=stream_id, path=path, error=sink.error)
        else:
            audit.record(
                "recording_stopped",
                stream=stream_id,
                path=path,
                frames=sink.meter.processed,
                segments=[str(segment) for segment in _segments(sink)],
            )


def _segments(sink: SinkOp) -> tuple[Path, ...]:
    """The files a recording sink wrote (its segments), oldest first."""
    return tuple(getattr(sink.made, "segments", ()))


def server_tls(config: EdgeConfig) -> ServerTls | None:
    """The gRPC server's TLS files from the config (None: no TLS)."""
    grpc = config.grpc
    if grpc.tls_cert is None or grpc.tls_key is None:
        return None
    return ServerTls(grpc.tls_cert, grpc.tls_key, grpc.tls_client_ca)


def _start_dashboard(config: EdgeConfig, app: EdgeApp, audit: AuditLog | None) -> WebDashboard:
    """The OR dashboard, serving (``config.web`` set): the gRPC section's tokens and TLS, and
    the app's hand-off desk for the page's questions."""
    from orstream.edge.web.state_feed import StateFeed
    from orstream.edge.web.video_prompt import VideoPrompter
    from orstream.edge.web.video_viewers import VideoViewers
    from orstream.edge.web.web_access import WebAccess
    from orstream.edge.web.web_ask import WebAsks
    from orstream.edge.web.web_server import WebDashboard

    web, grpc = config.web, config.grpc
    assert web is not None and app.web_frames is not None
    tokens = None if grpc.tokens is None else Tokens.load(grpc.tokens)
    dashboard = WebDashboard(
        web.address,
        StateFeed(app.status, app.hub, app.stale_after_s),
        VideoViewers(app.web_frames, web.ice_servers, web.max_viewers),
        WebAccess(tokens, audit),
        VideoPrompter(app.prompter, grpc.max_prompts),
        server_tls(config),
        WebAsks(app.handoffs),
    )
    dashboard.start()
    if web.insecure and not is_loopback(web.address):
        log.warning(
            "OR dashboard on %s without TLS or tokens (--insecure): anyone who reaches it "
            "sees the live video",
            web.address,
        )
    return dashboard


def run_edge(
    config: EdgeConfig,
    *,
    source: Source | None = None,
    on_serving: Callable[[int], None] | None = None,
    say: Callable[[str], None] = say_stderr,
) -> EdgeRunReport:
    """Run the stream to its end with the gRPC API up; returns the final status.

    Args:
        config: what to run.
        source: a source to use instead of ``config.source.uri``.
        on_serving: called with the gRPC port once everything is up.
        say: where progress lines go.

    Raises:
        OrstreamError: bad config, model or source; a source failure mid-run (after the
            results so far are written and the recording is closed).
    """
    started = time.monotonic()
    audit = None if config.audit is None else AuditLog(config.audit.path)
    if audit is not None:
        audit.record("config", config=config.model_dump(mode="json"))
    app = EdgeApp(config, sources={source.stream_id: source} if source is not None else None)
    if audit is not None:
        _audit_start(audit, app)
    server: EdgeGrpcServer | None = None
    port = 0
    if config.grpc.enabled:
        server = EdgeGrpcServer(
            app.hub,
            app.status,
            address=config.grpc.address,
            reflection=config.grpc.reflection,
            max_message_bytes=int(config.grpc.max_message_mb * 1024 * 1024),
            prompter=app.prompter,
            video_text=app.video_text,
            max_prompts=config.grpc.max_prompts,
            max_subscribers_per_client=config.grpc.max_subscribers_per_client,
            tokens=None if config.grpc.tokens is None else Tokens.load(config.grpc.tokens),
            tls=server_tls(config),
            audit=audit,
            handoffs=app.handoffs,
        )
        port = server.start()
        app.on_health = server.set_serving
        app.on_stream_health = server.set_stream_health
        if config.grpc.insecure and not is_loopback(config.grpc.address):
            log.warning(
                "gRPC on %s without TLS or tokens (--insecure): anyone who reaches it can read "
                "results and prompt",
                config.grpc.address,
            )
        say(f"gRPC EdgeService on {config.grpc.address.rsplit(':', 1)[0]}:{port}")
    if app.handoffs is not None and config.server is not None:
        open_items, _ = app.handoffs.store.usage()
        say(
            f"hand-offs to the job server at {config.server.address} through the outbox in "
            f"{config.server.outbox} ({open_items} items not yet over)"
        )
    metrics = None
    if config.metrics is not None:
        from orstream.edge.service.metrics import EdgeMetrics

        metrics = EdgeMetrics(
            app.status, app.hub, None if server is None else server.requests.snapshot
        )
        metrics_port = metrics.start(config.metrics.address)
        say(f"Prometheus metrics on {config.metrics.address.rsplit(':', 1)[0]}:{metrics_port}")
    dashboard = None
    if config.web is not None:
        dashboard = _start_dashboard(config, app, audit)
        host = config.web.address.rsplit(":", 1)[0]
        say(f"OR dashboard on {dashboard.scheme}://{host}:{dashboard.port}/")
    stop_progress = threading.Event()
    progress = threading.Thread(
        target=_progress, args=(app, stop_progress, say), name="orstream-progress", daemon=True
    )
    try:
        if on_serving is not None:
            on_serving(port)
        progress.start()
        with StopSignals(app.interrupt) as signals:
            app.run()
        if signals.received is not None:
            how = "drained" if app.drained else "the graph did not drain in time"
            say(f"stopped by {signals.received}: {how}")
    finally:
        stop_progress.set()
        if dashboard is not None:
            dashboard.stop()
        if server is not None:
            server.stop(config.grpc.drain_s)
        if app.handoffs is not None:
            app.handoffs.close()
        app.hub.close()
        if metrics is not None:
            metrics.stop()
        if audit is not None:
            _audit_end(audit, app)
            audit.close()
    return EdgeRunReport(
        app.status(),
        port,
        time.monotonic() - started,
        tuple(app.failures()),
        app.interrupted_by,
        app.drained,
        tuple(segment for _, sink in _recordings(app) for segment in _segments(sink)),
    )
