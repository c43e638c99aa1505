"""Sample results, statuses, frames and loopback helpers shared by the edge service and client
tests."""

from __future__ import annotations

import socket

import grpc
import numpy as np

from orstream.edge.service.server import EdgeGrpcServer
from orstream.latency import LatencySummary
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus, StageStatus
from orstream.streams.frame import Frame


def result(
    index: int,
    stream_id: str = "cam0",
    step: int | None = 3,
    instruments: tuple[int, int] | None = (16, -2),
) -> FrameResult:
    """A frame result at 25 fps with the given kinds."""
    return FrameResult(
        stream_id=stream_id,
        index=index,
        pts_ns=index * 40_000_000,
        capture_ns=1_000 + index,
        produced_ns=2_000 + index,
        models=("pitvis_workflow@1.0.0",),
        step=None if step is None else StepResult(step, 0.75),
        instruments=None
        if instruments is None
        else InstrumentResult(slots=instruments, present=((instruments[0], 0.8),)),
    )


def sample_status() -> RuntimeStatus:
    """A runtime with one playing source, one failed source and a model on each."""
    return RuntimeStatus(
        sources=(
            SourceStatus("cam0", "phantom://?seed=3", "playing", 24.5, 1200),
            SourceStatus("cam1", "rtsp://10.0.0.9/live", "failed", 0.0, 17, "connection refused"),
        ),
        models=(
            ModelStatus(
                "pitvis_workflow",
                "1.0.0",
                "cam0",
                "onnxruntime-cpu",
                5.0,
                "serving",
                250,
                backend_reason="onnxruntime-cpu (tensorrt:cuda: no CUDA GPU 0 on this host)",
            ),
            ModelStatus("pitvis_workflow", "1.0.0", "cam1", "onnxruntime-cpu", 5.0, "failed", 0),
        ),
        stages=(
            StageStatus("inference.cam0", LatencySummary.of([10.0, 12.0, 30.0]), 250, 3),
            StageStatus("overlay", LatencySummary.of([]), 0, 0),
        ),
        frame_to_result=LatencySummary.of([40.0, 41.0, 90.0]),
        video_frames_in=1217,
        video_frames_out=1190,
        uptime_s=50.25,
    )


def channel_to(server: EdgeGrpcServer, *options: tuple[str, int]) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{server.port}", options=list(options))


HEIGHT, WIDTH = 180, 320


def frame(index: int, stream_id: str = "cam0") -> Frame:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return Frame(image, index * 40_000_000, 0, index, stream_id)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
