"""A flood of prompts at the server's limit: the video path keeps its frames and health keeps
answering at once; callers beyond the limit are refused at once instead of queueing work."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_SEGMENTER
from orstream.edge.service.server import EdgeGrpcServer
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.sinks.memory import MemorySink

FLOODERS = 8
SECONDS = 8


def test_a_prompt_flood_keeps_the_video_and_health(random_workflow_package: Path) -> None:
    config = parse_config(
        {
            "source": {"uri": "phantom://", "stream_id": "or1"},
            "model": {"package": str(random_workflow_package)},
            "segmentation": {"package": str(SHIPPED_SEGMENTER), "rate_hz": 2},
            "grpc": {"enabled": False},
        },
        "test",
    )
    source = PhantomSource(
        seed=5, seconds=SECONDS, width=640, height=360, fps=24.0, paced=True, stream_id="or1"
    )
    sink = MemorySink(keep_images=False)
    app = EdgeApp(
        config,
        sources={"or1": source},
        sinks={"or1": [SinkSpec("memory", lambda width, height, fps: sink)]},
    )
    server = EdgeGrpcServer(app.hub, app.status, "127.0.0.1:0", prompter=app.prompter)
    port = server.start()
    app.on_health = server.set_serving
    names = list(app.prompter.model.classes) if app.prompter is not None else []
    codes: dict[str, int] = {}
    health_ms: list[float] = []
    done = threading.Event()

    def flood() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            request = edge_pb2.PromptRequest(stream_id="or1", latest=True, text_classes=names)
            while not done.is_set():
                try:
                    stub.Prompt(request, timeout=2)
                    code = "OK"
                except grpc.RpcError as error:
                    code = error.code().name
                codes[code] = codes.get(code, 0) + 1

    def check_health() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                started = time.perf_counter()
                stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                health_ms.append((time.perf_counter() - started) * 1e3)
                time.sleep(0.05)

    runner = threading.Thread(target=app.run)
    runner.start()
    time.sleep(1.0)  # the first frames are in
    clients = [threading.Thread(target=flood) for _ in range(FLOODERS)]
    clients.append(threading.Thread(target=check_health))
    for client in clients:
        client.start()
    runner.join(SECONDS + 30)
    done.set()
    for client in clients:
        client.join(10)
    server.stop(1)
    status = app.status()
    # Measured on 2 cores while other tests ran: 192 of 192 frames out, health p99 24.3 ms
    # (max 27.8), 109 prompts answered and 5595 refused at once. The flooding clients run in
    # this process and share its interpreter lock with the phantom camera, which once (in CI,
    # beside another test process) came to a frame more than a frame period late and skipped
    # it, as a live source does: every frame is accounted for, and skips stay rare.
    assert status.video_frames_out >= 0.99 * status.video_frames_in
    assert status.video_frames_in + source.dropped == source.frame_count
    assert source.dropped <= 0.02 * source.frame_count
    assert codes.get("OK", 0) > 0 and codes.get("RESOURCE_EXHAUSTED", 0) > 0
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "CANCELLED"}
    assert len(health_ms) > 20 and float(np.percentile(health_ms, 99)) < 100
    print(
        f"flood: {codes}, video {status.video_frames_out}/{status.video_frames_in}, health p50 "
        f"{np.percentile(health_ms, 50):.1f} ms p99 {np.percentile(health_ms, 99):.1f} ms "
        f"max {max(health_ms):.1f} ms"
    )
