"""The edge runtime end to end with real parts: GStreamer, ONNX Runtime, gRPC on loopback."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from orstream.edge.app.compose import build_runtime
from orstream.edge.app.config import parse_config
from orstream.edge.app.runtime import EdgeRuntime, PortSettings, RuntimeSettings, SinkSpec
from orstream.edge.backends import create_backend
from orstream.edge.models.workflow_model import WorkflowModel
from orstream.edge.overlay import Overlay
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage, load_package
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.streams.frame import Frame
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sources.video_file import probe_video

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
    runtime = build_runtime(config, hub)
    server = EdgeGrpcServer(hub, runtime.status, address="127.0.0.1:0")
    port = server.start()
    received: list = []
    ready = threading.Event()
    client = threading.Thread(target=_subscribe_all, args=(port, received, ready))
    client.start()
    assert ready.wait(10)
    runtime.run()
    server.stop(2.0)
    hub.close()
    client.join(10)

    status = runtime.status()
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
        self.delay_s = delay_s

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        self.inner.load(package, device)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.delay_s)
        return self.inner.infer(inputs)


def test_a_model_ten_times_too_slow_leaves_the_video_at_full_rate(
    random_workflow_package: Path,
) -> None:
    package = load_package(random_workflow_package)
    rate_hz = 4.0
    model = WorkflowModel(package, SlowBackend(package, 10 / rate_hz), rate_hz)
    source = PhantomSource(seed=3, seconds=5, width=320, height=180, fps=24.0, paced=True)
    sink = MemorySink(keep_images=False)
    runtime = EdgeRuntime(
        source,
        model=model,
        overlay=Overlay.default(),
        sinks=[SinkSpec("memory", lambda w, h, fps: sink)],
        settings=RuntimeSettings(
            video_port=PortSettings(24, "drop_oldest"), inference_port=PortSettings(1, "latest")
        ),
    )
    runtime.run()
    status = runtime.status()
    assert status.video_frames_in == source.frame_count  # the live source never had to skip
    assert status.video_frames_out == status.video_frames_in
    assert len(sink.frames) == source.frame_count
    assert source.dropped == 0
    stages = {stage.name: stage for stage in status.stages}
    assert stages["overlay"].dropped == 0
    assert stages["inference"].dropped > 0  # the model only ever saw the latest frame
    assert 1 <= status.models[0].inferred <= 3
    assert runtime.frames_stale > 0  # the overlay said its result was old


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
    source = PhantomSource(seed=4, seconds=2, width=160, height=96, fps=24.0, paced=True)
    sink = MemorySink(keep_images=False)
    health: list[bool] = []
    runtime = EdgeRuntime(
        source,
        model=model,
        overlay=Overlay.default(),
        sinks=[SinkSpec("memory", lambda w, h, fps: sink)],
        on_health=health.append,
    )
    runtime.run()
    status = runtime.status()
    assert health[0] is True and health[-1] is False
    assert False in health[1:-1]  # turned off when the model failed, before shutdown
    assert status.models[0].state == "failed" and "device lost" in status.models[0].error
    assert status.models[0].inferred == 3
    assert len(sink.frames) == status.video_frames_in == source.frame_count


class StallingSource:
    """A live source that delivers a few frames, goes silent, then delivers a few more."""

    stream_id = "stall"
    uri = "test://stall"
    live = True

    def __init__(self, silence_s: float) -> None:
        self.silence_s = silence_s

    def frames(self) -> Iterator[Frame]:
        image = np.full((96, 160, 3), 90, np.uint8)
        for index in range(10):
            if index == 5:
                time.sleep(self.silence_s)
            yield Frame(image, index * 40_000_000, time.monotonic_ns(), index, self.stream_id)
            time.sleep(0.04)

    def close(self) -> None:
        pass


def test_a_silent_source_shows_no_signal_on_displays_only() -> None:
    display = MemorySink()
    recording = MemorySink()
    runtime = EdgeRuntime(
        StallingSource(silence_s=1.0),
        overlay=Overlay.default(),
        sinks=[
            SinkSpec("record", lambda w, h, fps: recording),
            SinkSpec("display", lambda w, h, fps: display, display=True),
        ],
        settings=RuntimeSettings(no_signal_after_ms=300),
    )
    runtime.run()
    assert len(recording.frames) == 10  # the recording holds source frames only
    repeats = len(display.frames) - 10
    assert 2 <= repeats <= 4  # about every 300 ms of the 1 s silence
    no_signal = display.frames[5]  # the first repeat, drawn over the 5th frame's picture
    assert no_signal.index == 4
    assert not np.array_equal(no_signal.image, display.frames[4].image)
