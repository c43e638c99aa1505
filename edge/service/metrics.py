"""Prometheus metrics of a running edge: ``--metrics HOST:PORT`` serves them as text.

Counts, drops, source state and backends are read from the runtime's status on every scrape
(one source of truth with ``GetStatus``); frame-to-result latency is a histogram fed by a
subscription to every result the runtime publishes, per stream and model.

- ``orstream_video_frames_total{stream, direction="in"|"out"}``: frames the source delivered,
  frames that left the stream's video path.
- ``orstream_frames_dropped_total{stream, stage}``: items a stage's input dropped under its
  policy (``stream`` is empty for the shared model stages).
- ``orstream_frame_to_result_seconds{stream, model}``: capture to result, a histogram.
- ``orstream_source_up{stream}``: 1 while the source delivers frames (0 while it is stalled,
  reconnecting or over).
- ``orstream_reconnects_total{stream}``: times the stream's feed came back after a loss.
- ``orstream_stage_failed{stream, stage}``: 1 for a stage that failed (a sink that could not
  write: it was closed and the video went on without it).
- ``orstream_model_info{model, version, stream, backend}``: 1, naming the backend a model runs on.
- ``orstream_grpc_requests_total{method, code}``: gRPC calls ended, by status code (with the
  gRPC API on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from orstream.edge.service.result_hub import ResultHub
from orstream.errors import OrstreamError
from orstream.results import KINDS
from orstream.status import RuntimeStatus

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
"""Seconds: fine around the 50 ms a live result should stay within."""
VIDEO_PATH = ".video_path"


class _StatusCollector(Collector):
    """The status-derived metrics, made fresh on every scrape."""

    def __init__(
        self,
        status: Callable[[], RuntimeStatus],
        requests: Callable[[], Mapping[tuple[str, str], int]] | None,
    ) -> None:
        self.status = status
        self.requests = requests

    def collect(self) -> Iterator[Any]:
        if self.requests is not None:
            calls = CounterMetricFamily(
                "orstream_grpc_requests", "gRPC calls ended", labels=["method", "code"]
            )
            for (method, code), count in sorted(self.requests().items()):
                calls.add_metric([method, code], count)
            yield calls
        status = self.status()
        frames = CounterMetricFamily(
            "orstream_video_frames", "Video frames per stream", labels=["stream", "direction"]
        )
        up = GaugeMetricFamily(
            "orstream_source_up", "1 while the stream's source delivers frames", labels=["stream"]
        )
        reconnects = CounterMetricFamily(
            "orstream_reconnects",
            "Times the stream's feed came back after a loss",
            labels=["stream"],
        )
        for source in status.sources:
            frames.add_metric([source.stream_id, "in"], source.frames_in)
            up.add_metric([source.stream_id], 1.0 if source.state == "playing" else 0.0)
            reconnects.add_metric([source.stream_id], source.reconnects)
        failed = GaugeMetricFamily(
            "orstream_stage_failed", "1 for a stage that failed", labels=["stream", "stage"]
        )
        dropped = CounterMetricFamily(
            "orstream_frames_dropped", "Items a stage's input dropped", labels=["stream", "stage"]
        )
        streams = {source.stream_id for source in status.sources}
        for stage in status.stages:
            stream, _, name = stage.name.partition(".")
            if stream not in streams or not name:
                stream, name = "", stage.name
            dropped.add_metric([stream, name], stage.dropped)
            failed.add_metric([stream, name], 1.0 if stage.state == "failed" else 0.0)
            if stage.name.endswith(VIDEO_PATH) and stream:
                frames.add_metric([stream, "out"], stage.processed)
        info = GaugeMetricFamily(
            "orstream_model_info",
            "The backend each model runs on, per stream",
            labels=["model", "version", "stream", "backend"],
        )
        for model in status.models:
            info.add_metric([model.name, model.version, model.stream_id, model.backend], 1.0)
        yield from (frames, dropped, up, reconnects, failed, info)


class EdgeMetrics:
    """The runtime's metrics and the HTTP endpoint Prometheus scrapes.

    Args:
        status: returns a fresh snapshot of the runtime.
        hub: where the runtime publishes its results (for the latency histogram).
        requests: the gRPC server's calls per (method, code), when it runs.
    """

    def __init__(
        self,
        status: Callable[[], RuntimeStatus],
        hub: ResultHub,
        requests: Callable[[], Mapping[tuple[str, str], int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatusCollector(status, requests))
        self.latency = Histogram(
            "orstream_frame_to_result_seconds",
            "Capture of a frame to its result",
            ["stream", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._results = hub.subscribe(kinds=KINDS, capacity=1024)
        self._reader = threading.Thread(target=self._observe, name="edge-metrics", daemon=True)
        self._server: Any = None
        self.port: int | None = None

    def start(self, address: str) -> int:
        """Serve on ``HOST:PORT`` (port 0: any free one); returns the port.

        Raises:
            OrstreamError: the address is not HOST:PORT or cannot be bound.
        """
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise OrstreamError(f"--metrics {address}: give HOST:PORT, e.g. 127.0.0.1:9108")
        try:
            self._server, _ = start_http_server(int(port), host, registry=self.registry)
        except OSError as error:
            raise OrstreamError(f"cannot serve metrics on {address} ({error.strerror})") from None
        self.port = int(self._server.server_address[1])
        self._reader.start()
        return self.port

    def stop(self) -> None:
        self._results.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _observe(self) -> None:
        while True:
            result = self._results.get(timeout_s=0.5)
            if result is None:
                if self._results.closed:
                    return
                continue
            seconds = max(0.0, (result.produced_ns - result.capture_ns) / 1e9)
            for model in result.models:
                self.latency.labels(result.stream_id, model.partition("@")[0]).observe(seconds)
