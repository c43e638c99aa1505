"""The edge app end to end with real parts: GStreamer, ONNX Runtime, gRPC on loopback; one stream
and several."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.backends import create_backend
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage, load_package
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.results import KINDS
from orstream.streams.frame import Frame
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sources.video_file import probe_video
from orstream.video_search import SearchRequest

SECONDS = 6


@pytest.fixture(scope="module")
def phantom_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runtime_phantom")
    write_dataset(PhantomSpec(1, SECONDS, seed=5, width=320, height=180, fps=12.0), out)
    return out / "videos" / "video_01.mp4"


def _subscribe_all(port: int, received: list, ready: threading.Event) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = edge_pb2_grpc.EdgeServiceStub(channel)
        stream = stub.Subscribe(edge_pb2.SubscribeRequest())
        stream.initial_metadata()  # the server sends it once the subscription is in place
        ready.set()
        for response in stream:
            received.append(response.result)


def test_file_through_runtime_to_a_grpc_client_and_a_recording(
    phantom_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    hub = ResultHub()
    record = tmp_path / "overlay.mp4"
    config = parse_config(
        {
            "source": {"uri": str(phantom_mp4), "stream_id": "case"},
            "model": {"package": str(random_workflow_package), "rate_hz": 4},
            "record": {"path": str(record)},
            "results": {"dir": str(tmp_path / "results")},
        },
        "test",
    )
    app = EdgeApp(config, hub)
    server = EdgeGrpcServer(hub, app.status, address="127.0.0.1:0")
    port = server.start()
    received: list = []
    ready = threading.Event()
    client = threading.Thread(target=_subscribe_all, args=(port, received, ready))
    client.start()
    assert ready.wait(10)
    app.run()
    server.stop(2.0)
    hub.close()
    client.join(10)

    assert app.failures() == []
    status = app.status()
    frames = probe_video(phantom_mp4).frame_count
    assert status.video_frames_in == status.video_frames_out == frames
    inferred = status.models[0].inferred
    assert inferred == SECONDS * 4  # a 4 Hz model on a 6 s file, none skipped off a file
    assert len(received) == inferred
    indices = [r.index for r in received]
    pts = [r.pts_ns for r in received]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert pts == sorted(pts)
    assert all(r.stream_id == "case" and r.HasField("step") for r in received)
    assert probe_video(record).frame_count == frames  # every source frame was recorded
    assert (tmp_path / "results" / "steps" / "video_01.csv").is_file()
    # the default preference starts at TensorRT, which has no engine for this package
    model = status.models[0]
    assert model.backend_reason.startswith(model.backend)
    assert "tensorrt:cuda: " in model.backend_reason


class SlowBackend:
    """A real ONNX Runtime backend that takes ``delay_s`` longer per call."""

    def __init__(self, package: ModelPackage, delay_s: float) -> None:
        self.inner = create_backend(["onnxruntime"], package)
        self.name = "slow-onnxruntime"
        self.label = f"slow-{self.inner.label}"
        self.precision = self.inner.precision
        self.max_batch = self.inner.max_batch
        self.delay_s = delay_s

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        self.inner.load(package, device)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.delay_s)
        return self.inner.infer(inputs)


def live_config(package: Path, rate_hz: float, **sections: object) -> dict:
    """A live stream ``cam0`` through the workflow model, gRPC off."""
    return {
        "source": {"uri": "phantom://"},
        "model": {"package": str(package), "rate_hz": rate_hz},
        "grpc": {"enabled": False},
        **sections,
    }


def memory(sink: MemorySink, watched: bool = False) -> SinkSpec:
    return SinkSpec("memory", lambda w, h, fps: sink, watched)


def test_a_model_ten_times_too_slow_leaves_the_video_at_full_rate(
    random_workflow_package: Path,
) -> None:
    package = load_package(random_workflow_package)
    rate_hz = 4.0
    model = WorkflowModel(package, SlowBackend(package, 10 / rate_hz), rate_hz)
    source = PhantomSource(
        seed=3, seconds=5, width=320, height=180, fps=24.0, paced=True, stream_id="cam0"
    )
    sink = MemorySink(keep_images=False)
    app = EdgeApp(
        parse_config(live_config(random_workflow_package, rate_hz), "test"),
        sources={"cam0": source},
        sinks={"cam0": [memory(sink)]},
        workflow=model,
    )
    app.run()
    status = app.status()
    assert status.video_frames_in == source.frame_count  # the live source never had to skip
    assert status.video_frames_out == status.video_frames_in
    assert len(sink.frames) == source.frame_count
    assert source.dropped == 0
    stages = {stage.name: stage for stage in status.stages}
    assert stages["cam0.overlay"].dropped == 0
    assert stages["cam0.video_path"].dropped == 0
    assert stages["workflow"].dropped > 0  # the model only ever saw the latest frame
    assert 1 <= status.models[0].inferred <= 3
    overlay = app.streams["cam0"].overlay
    assert overlay is not None and overlay.frames_stale > 0  # the overlay said it was old


class FailingBackend(SlowBackend):
    """Answers ``good_calls`` times, then fails as a broken accelerator would."""

    def __init__(self, package: ModelPackage, good_calls: int) -> None:
        super().__init__(package, 0.0)
        self.calls_left = good_calls

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.calls_left == 0:
            raise OrstreamError("backend: device lost")
        self.calls_left -= 1
        return self.inner.infer(inputs)


def test_a_failing_model_turns_health_off_and_the_video_keeps_flowing(
    random_workflow_package: Path,
) -> None:
    package = load_package(random_workflow_package)
    model = WorkflowModel(package, FailingBackend(package, good_calls=3), rate_hz=8.0)
    source = PhantomSource(
        seed=4, seconds=2, width=160, height=96, fps=24.0, paced=True, stream_id="cam0"
    )
    sink = MemorySink(keep_images=False)
    health: list[bool] = []
    app = EdgeApp(
        parse_config(live_config(random_workflow_package, 8.0), "test"),
        sources={"cam0": source},
        sinks={"cam0": [memory(sink)]},
        workflow=model,
        on_health=health.append,
    )
    app.run()
    status = app.status()
    assert health[0] is True and health[-1] is False
    assert False in health[1:-1]  # turned off when the model failed, before shutdown
    assert status.models[0].state == "failed" and "device lost" in status.models[0].error
    assert status.models[0].inferred == 3
    assert len(sink.frames) == status.video_frames_in == source.frame_count
    assert app.failures() == []  # the video went on: not a failure of the run


class StallingSource:
    """A live source that delivers a few frames, goes silent, then delivers a few more."""

    stream_id = "stall"
    uri = "test://stall"
    live = True

    def __init__(self, silence_s: float) -> None:
        self.silence_s = silence_s

    def frames(self) -> Iterator[Frame]:
        image = np.full((96, 160, 3), 90, np.uint8)
        started = time.monotonic_ns()
        for index in range(10):
            if index == 5:
                time.sleep(self.silence_s)
            now = time.monotonic_ns()  # stamped by the clock, as a live camera stamps
            yield Frame(image, now - started, now, index, self.stream_id)
            time.sleep(0.04)

    def close(self) -> None:
        pass


def test_a_silent_live_source_shows_no_signal_on_every_sink_where_the_silence_was() -> None:
    display = MemorySink()
    recording = MemorySink()
    config = parse_config(
        {
            "source": {"uri": "test://stall", "stream_id": "stall"},
            "overlay": {"no_signal_after_ms": 300},
            "grpc": {"enabled": False},
        },
        "test",
    )
    app = EdgeApp(
        config,
        sources={"stall": StallingSource(silence_s=1.0)},
        sinks={"stall": [memory(recording), SinkSpec("display", lambda w, h, fps: display, True)]},
    )
    app.run()
    for sink in (display, recording):
        repeats = len(sink.frames) - 10
        assert 2 <= repeats <= 4  # about every 300 ms of the 1 s silence
        no_signal = sink.frames[5]  # the first repeat, drawn over the 5th frame's picture
        assert no_signal.index == 4
        assert not np.array_equal(no_signal.image, sink.frames[4].image)
        # Stamped on the stream's timeline, inside the silence: after frame 4, before frame 5.
        pts = [frame.pts_ns for frame in sink.frames]
        assert pts == sorted(pts)
        assert pts[4] + 250_000_000 < pts[5] and pts[5 + repeats - 1] < pts[4] + 1_100_000_000


def small_phantom(seed: int, seconds: int) -> str:
    return f"phantom://?seed={seed}&seconds={seconds}&width=160&height=96&fps=12"


def test_two_streams_share_one_model_and_keep_their_own_results(
    random_workflow_package: Path, tmp_path: Path
) -> None:
    hub = ResultHub()
    per_stream = {name: hub.subscribe([name], capacity=1000) for name in ("endo", "exo")}
    config = parse_config(
        {
            "sources": [
                {
                    "uri": "phantom://?seed=1&seconds=3&width=160&height=96&fps=12",
                    "stream_id": "endo",
                },
                {
                    "uri": "phantom://?seed=2&seconds=3&width=160&height=96&fps=12",
                    "stream_id": "exo",
                },
            ],
            "model": {"package": str(random_workflow_package), "rate_hz": 4},
            "record": {"path": str(tmp_path / "or-{stream}.mp4")},
            "results": {"dir": str(tmp_path / "results")},
        },
        "test",
    )
    app = EdgeApp(config, hub)
    server = EdgeGrpcServer(hub, app.status, address="127.0.0.1:0")
    port = server.start()
    app.run()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = edge_pb2_grpc.EdgeServiceStub(channel).GetStatus(edge_pb2.GetStatusRequest())
    server.stop(1.0)
    hub.close()

    assert app.failures() == []
    assert [s.stream_id for s in reply.sources] == ["endo", "exo"]
    assert sorted(m.stream_id for m in reply.models) == ["endo", "exo"]
    assert len(app.graph.sources()) == 2 and app.workflow is not None  # one model for both
    for name, subscription in per_stream.items():
        results = []
        while (item := subscription.get(timeout_s=0)) is not None:
            results.append(item)
        assert len(results) == 12  # 4 Hz for 3 s, nothing skipped on a live source this slow
        assert {result.stream_id for result in results} == {name}
        assert hub.timeline(name)
        assert probe_video(tmp_path / f"or-{name}.mp4").frame_count == 36
        assert (tmp_path / "results" / name / "steps" / "video_01.csv").is_file()


def test_a_stream_whose_source_fails_leaves_the_others_running(tmp_path: Path) -> None:
    missing = tmp_path / "video_02.mp4"
    sink = MemorySink(keep_images=False)
    config = parse_config(
        {
            "sources": [
                {
                    "uri": "phantom://?seed=1&seconds=2&width=160&height=96&fps=12",
                    "stream_id": "ok",
                },
                {"uri": str(missing), "stream_id": "gone"},
            ],
            "grpc": {"enabled": False},
        },
        "test",
    )
    app = EdgeApp(config, sinks={"ok": [memory(sink)]})
    app.run()
    sources = {source.stream_id: source for source in app.status().sources}
    assert sources["ok"].state == "ended" and sources["ok"].frames_in == 24
    assert sources["gone"].state == "failed" and str(missing) in sources["gone"].error
    assert len(sink.frames) == 24
    [failure] = app.failures()
    assert failure.startswith("gone.source: ") and "\n" not in failure


def test_streams_without_a_sink_get_no_overlay(random_workflow_package: Path) -> None:
    config = parse_config(
        live_config(random_workflow_package, 2.0, record={"path": "/tmp/x-{stream}.mp4"})
        | {
            "source": None,
            "sources": [{"uri": small_phantom(1, 1)}, {"uri": small_phantom(2, 1)}],
        },
        "test",
    )
    app = EdgeApp(config, sinks={})
    assert [stream.overlay is not None for stream in app.streams.values()] == [True, True]
    bare = parse_config(
        live_config(random_workflow_package, 2.0)
        | {"source": None, "sources": [{"uri": small_phantom(3, 1)}]},
        "test",
    )
    app = EdgeApp(bare)
    assert app.streams["cam0"].overlay is None and not app.streams["cam0"].sinks
    assert sorted(app.graph.operators) == ["cam0.source", "publish", "workflow"]


def test_no_signal_frames_go_to_every_sink_of_a_live_stream_and_the_watched_ones_of_a_file(
    tmp_path: Path,
) -> None:
    write_dataset(PhantomSpec(1, 1, seed=5, width=160, height=96, fps=12.0), tmp_path)
    for uri, recorded in (
        (small_phantom(5, 1), True),
        (str(tmp_path / "videos/video_01.mp4"), False),
    ):
        config = parse_config(
            {
                "source": {"uri": uri},
                "record": {"path": str(tmp_path / "or.mp4")},
                "rtsp": {"port": 0},
                "grpc": {"enabled": False},
            },
            "test",
        )
        app = EdgeApp(config)
        sinks = {sink.kind: sink for sink in app.streams["cam0"].sinks}
        assert set(sinks) == {"record", "rtsp"}
        assert sinks["rtsp"].inputs["no_signal"]
        assert bool(sinks["record"].inputs["no_signal"]) is recorded
        app.close()


def test_a_video_text_model_adds_zero_shot_steps_and_searchable_clips(
    phantom_mp4: Path, random_workflow_package: Path, random_videotext_package: Path
) -> None:
    hub = ResultHub()
    subscription = hub.subscribe()  # the default kinds include the zero-shot step
    config = parse_config(
        {
            "source": {"uri": str(phantom_mp4), "stream_id": "case"},
            "model": {"package": str(random_workflow_package), "rate_hz": 2},
            "videotext": {"package": str(random_videotext_package), "rate_hz": 1},
        },
        "test",
    )
    app = EdgeApp(config, hub)
    app.run()
    hub.close()
    results = []
    while (result := subscription.get(timeout_s=0)) is not None:
        results.append(result)
    zeroshot = [r for r in results if r.zeroshot_step is not None]
    supervised = [r for r in results if r.step is not None]
    assert len(zeroshot) == SECONDS and len(supervised) == SECONDS * 2
    assert all(r.step is None for r in zeroshot)  # never mixed with the recognizer's step
    assert all(r.zeroshot_step is None for r in supervised)
    names = {m.name: m for m in app.status().models}
    assert names["ophclip_small"].inferred == SECONDS and names["ophclip_small"].rate_hz == 1
    assert app.video_text is not None
    answer = app.video_text.search(SearchRequest("the suction", limit=2))
    assert answer.stream_id == "case" and answer.searched == SECONDS
    assert [r.index for r in zeroshot] == sorted(r.index for r in zeroshot)
    assert {m.index for m in answer.moments} <= {r.index for r in zeroshot}


def test_the_recognizer_names_instruments_with_the_live_masks_models(
    phantom_mp4: Path, random_workflow_package: Path
) -> None:
    from orstream.edge.models.shipped import SHIPPED_CLASSIFIER, SHIPPED_SEGMENTER

    hub = ResultHub()
    subscription = hub.subscribe(kinds=KINDS, capacity=256)
    config = parse_config(
        {
            "source": {"uri": str(phantom_mp4), "stream_id": "case", "realtime": True},
            "model": {"package": str(random_workflow_package), "rate_hz": 1},
            "segmentation": {
                "package": str(SHIPPED_SEGMENTER),
                "classifier": str(SHIPPED_CLASSIFIER),
                "rate_hz": 1,
            },
        },
        "test",
    )
    app = EdgeApp(config, hub)
    assert app.workflow is not None and app.workflow.naming is not None
    app.run()
    hub.close()
    results = []
    while (result := subscription.get(timeout_s=0)) is not None:
        results.append(result)
    recognized = [r for r in results if r.step is not None]
    masked = {r.pts_ns: r for r in results if r.segmentation is not None}
    assert len(recognized) == SECONDS
    # Each second's frame is segmented too (played live, the segmenter keeps up), and its masks
    # name the recognizer's instruments.
    assert {r.pts_ns for r in recognized} <= set(masked)
    for result in recognized:
        assert result.instruments is not None
        assert result.models[1:] == masked[result.pts_ns].models
        own = masked[result.pts_ns].segmentation
        assert own is not None
        if result.step is not None and result.step.code != -1:
            names = sorted(own.instruments().items(), key=lambda item: (-item[1], item[0]))
            assert result.instruments.present == tuple(names)
