"""Prometheus metrics of a running edge: what GetStatus says, plus a latency histogram."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.service.metrics import EdgeMetrics
from orstream.errors import OrstreamError
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.sinks.memory import MemorySink


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_follow_the_run(random_workflow_package: Path) -> None:
    config = parse_config(
        {
            "source": {"uri": "phantom://", "stream_id": "or1"},
            "model": {"package": str(random_workflow_package), "rate_hz": 2},
            "grpc": {"enabled": False},
        },
        "test",
    )
    source = PhantomSource(seed=2, seconds=4, width=160, height=90, fps=12.0, stream_id="or1")
    sink = MemorySink(keep_images=False)
    app = EdgeApp(
        config,
        sources={"or1": source},
        sinks={"or1": [SinkSpec("memory", lambda width, height, fps: sink)]},
    )
    calls = {("EdgeService/GetStatus", "OK"): 3, ("EdgeService/Prompt", "RESOURCE_EXHAUSTED"): 1}
    metrics = EdgeMetrics(app.status, app.hub, lambda: calls)
    port = metrics.start("127.0.0.1:0")
    try:
        runner = threading.Thread(target=app.run)
        runner.start()
        time.sleep(2.0)
        live = scrape(port)
        assert live[("orstream_source_up", (("stream", "or1"),))] == 1.0
        runner.join(20)
        app.hub.close()
        time.sleep(0.6)  # the histogram's reader takes the last results
        done = scrape(port)
    finally:
        metrics.stop()
    status = app.status()
    frames_in = ("orstream_video_frames_total", (("direction", "in"), ("stream", "or1")))
    frames_out = ("orstream_video_frames_total", (("direction", "out"), ("stream", "or1")))
    assert done[frames_in] == status.video_frames_in == source.frame_count
    assert done[frames_out] == status.video_frames_out
    assert done[("orstream_source_up", (("stream", "or1"),))] == 0.0
    model = status.models[0]
    inferred = model.inferred
    latency = ("orstream_frame_to_result_seconds_count", (("model", model.name), ("stream", "or1")))
    assert done[latency] == inferred >= 4
    info = (
        "orstream_model_info",
        (
            ("backend", model.backend),
            ("model", model.name),
            ("stream", "or1"),
            ("version", model.version),
        ),
    )
    assert done[info] == 1.0
    method = ("orstream_grpc_requests_total", (("code", "OK"), ("method", "EdgeService/GetStatus")))
    assert done[method] == 3
    dropped = [key for key in done if key[0] == "orstream_frames_dropped_total"]
    assert ("orstream_frames_dropped_total", (("stage", "workflow"), ("stream", ""))) in dropped
    assert ("orstream_frames_dropped_total", (("stage", "source"), ("stream", "or1"))) in dropped


def test_a_bad_metrics_address_is_one_clear_error(random_workflow_package: Path) -> None:
    config = parse_config({"source": {"uri": "phantom://"}, "grpc": {"enabled": False}}, "t")
    app = EdgeApp(config, sinks={})
    with pytest.raises(OrstreamError, match="HOST:PORT"):
        EdgeMetrics(app.status, app.hub).start("9108")
    taken = EdgeMetrics(app.status, app.hub)
    port = taken.start("127.0.0.1:0")
    try:
        with pytest.raises(OrstreamError, match="cannot serve metrics"):
            EdgeMetrics(app.status, app.hub).start(f"127.0.0.1:{port}")
    finally:
        taken.stop()


class BrokenDisk:
    """A sink whose fifth write fails, as a recording on a disk that filled."""

    name = "broken"

    def __init__(self) -> None:
        self.writes = 0
        self.closed_after: int | None = None

    def write(self, frame: object) -> None:
        self.writes += 1
        if self.writes == 5:
            raise OrstreamError("broken: No space left on device")

    def close(self) -> None:
        self.closed_after = self.writes


def test_a_failed_sink_is_closed_at_once_and_reported_while_the_others_go_on() -> None:
    config = parse_config({"source": {"uri": "phantom://", "stream_id": "or1"}}, "test")
    source = PhantomSource(seed=2, seconds=3, width=160, height=90, fps=12.0, stream_id="or1")
    broken, kept = BrokenDisk(), MemorySink(keep_images=False)
    app = EdgeApp(
        config,
        sources={"or1": source},
        sinks={
            "or1": [
                SinkSpec("record", lambda width, height, fps: broken),
                SinkSpec("memory", lambda width, height, fps: kept),
            ]
        },
    )
    metrics = EdgeMetrics(app.status, app.hub)
    port = metrics.start("127.0.0.1:0")
    try:
        runner = threading.Thread(target=app.run)
        runner.start()
        time.sleep(1.5)
        live = scrape(port)
        assert broken.closed_after == 5  # finished at the failure, not at the end of the run
        runner.join(20)
    finally:
        metrics.stop()
    assert live[("orstream_stage_failed", (("stage", "sink.record"), ("stream", "or1")))] == 1.0
    assert live[("orstream_stage_failed", (("stage", "sink.memory"), ("stream", "or1")))] == 0.0
    assert live[("orstream_reconnects_total", (("stream", "or1"),))] == 0.0
    assert len(kept.frames) == source.frame_count  # the video went on for the other sink
    stage = next(s for s in app.status().stages if s.name == "or1.sink.record")
    assert stage.state == "failed" and "No space left" in stage.error
    assert app.failures() == ["or1.sink.record: broken: No space left on device"]
