"""The measurements behind ``orstream bench runtime`` (see its command module)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orstream.edge.edge_config import EdgeConfig, parse_config
from orstream.edge.edge_session import describe_status
from orstream.edge.runtime_status import RuntimeStatus
from orstream.errors import OrstreamError
from orstream.streams.video_file import probe_video

PHANTOM_SEED = 90210
"""Seed of the bench's phantom case (not a training seed of the shipped model)."""


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunFigures:
    """One configuration's run over the whole file."""

    name: str
    wall_s: float
    fps: float
    status: RuntimeStatus


def decode_only_fps(path: Path, frames: int) -> float:
    """Frames per second of ``gst-launch-1.0 filesrc ! decodebin ! fakesink`` on the file."""
    launcher = shutil.which("gst-launch-1.0")
    if launcher is None:
        raise OrstreamError("gst-launch-1.0 not found (install gstreamer1.0-tools)")
    command = [
        launcher, "-q", "filesrc", f"location={path}", "!", "decodebin", "!",
        "fakesink", "sync=false",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise OrstreamError(f"decode-only run failed: {done.stderr.strip()[-300:]}")
    return frames / wall


def _run(name: str, config: EdgeConfig, frames: int) -> RunFigures:
    from orstream.edge.build_runtime import build_runtime
    from orstream.edge.result_hub import ResultHub

    runtime = build_runtime(config, ResultHub())
    started = time.perf_counter()
    runtime.run()
    wall = time.perf_counter() - started
    status = runtime.status()
    if status.video_frames_out != frames:
        _say(f"{name}: {status.video_frames_out} of {frames} frames left the video path")
    return RunFigures(name, wall, status.video_frames_out / wall, status)


@dataclass(frozen=True)
class RunPlan:
    """One configuration of the bench."""

    name: str
    backend: str | None
    record: bool
    realtime: bool


PLANS = (
    RunPlan("video path only", None, record=False, realtime=False),
    RunPlan("null model", "null", record=False, realtime=False),
    RunPlan("model", "onnxruntime", record=False, realtime=False),
    RunPlan("model + H.264 record", "onnxruntime", record=True, realtime=False),
    RunPlan("live: model + record", "onnxruntime", record=True, realtime=True),
)
"""Flat-out runs price each part against decoding; the live run gives the latencies."""


def _config(
    plan: RunPlan, source: Path, record: Path, model: Path, rate: float | None
) -> EdgeConfig:
    data: dict = {
        "source": {"uri": str(source), "stream_id": "bench", "realtime": plan.realtime},
        "grpc": {"enabled": False},
    }
    if plan.record:
        data["record"] = {"path": str(record)}
    if plan.backend is not None:
        data["model"] = {"package": str(model), "backends": [plan.backend], "rate_hz": rate}
    return parse_config(data, "bench")


def bench_runtime(
    source: Path | None,
    model: Path,
    seconds: int,
    size: tuple[int, int],
    model_rate: float | None,
    json_path: Path | None,
) -> dict[str, object]:
    """Measure and print; returns the figures (also written to ``json_path`` if given)."""
    with tempfile.TemporaryDirectory(prefix="orstream-bench-") as scratch:
        work = Path(scratch)
        if source is None:
            from orstream.streams.phantom.writer import PhantomSpec, write_dataset

            width, height = size
            _say(f"rendering a {seconds} s {width}x{height} phantom case (seed {PHANTOM_SEED})")
            spec = PhantomSpec(
                cases=1, seconds=seconds, seed=PHANTOM_SEED, width=width, height=height
            )
            write_dataset(spec, work / "phantom")
            source = work / "phantom" / "videos" / "video_01.mp4"
        info = probe_video(source)
        frames = info.frame_count
        _say(f"{source.name}: {info.width}x{info.height}, {frames} frames at {info.fps:g} fps")
        decode_fps = decode_only_fps(source, frames)
        _say(f"decode only: {decode_fps:.1f} frames/s")
        runs: list[RunFigures] = []
        for plan in PLANS:
            pace = f" (real time, {info.duration_s:.0f} s)" if plan.realtime else ""
            _say(f"running: {plan.name}{pace}")
            config = _config(plan, source, work / f"{len(runs)}.mp4", model, model_rate)
            runs.append(_run(plan.name, config, frames))
    figures = _report(source, frames, info.fps, decode_fps, runs)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        _say(f"wrote {json_path}")
    return figures


def _inference_p50(run: RunFigures) -> float:
    return next(stage.latency.p50 for stage in run.status.stages if stage.name == "inference")


def _report(
    source: Path, frames: int, fps: float, decode_fps: float, runs: list[RunFigures]
) -> dict[str, object]:
    print(f"{source.name}: {frames} frames, {fps:g} fps; decode only {decode_fps:.1f} frames/s")
    print(f"{'run':<22} {'frames/s':>9} {'x decode':>9} {'x real time':>12} {'video dropped':>14}")
    for run in runs:
        dropped = run.status.video_frames_in - run.status.video_frames_out
        print(
            f"{run.name:<22} {run.fps:9.1f} {run.fps / decode_fps:9.2f} {run.fps / fps:12.2f} "
            f"{dropped:14d}"
        )
    by_name = {run.name: run for run in runs}
    model_cost = _inference_p50(by_name["model"]) - _inference_p50(by_name["null model"])
    print(
        f"the model costs {model_cost:.2f} ms per inferred frame (inference p50) over a null "
        f"model, whose pre-processing and plumbing take "
        f"{_inference_p50(by_name['null model']):.2f} ms"
    )
    live = runs[-1]
    print(f"live, at the file's own pace ({live.status.models[0].backend}):")
    print(describe_status(live.status))
    return {
        "source": str(source),
        "frames": frames,
        "fps": fps,
        "decode_only_fps": decode_fps,
        "model_cost_ms": model_cost,
        "runs": {
            run.name: {
                "fps": run.fps,
                "ratio_to_decode": run.fps / decode_fps,
                "wall_s": run.wall_s,
                "video_frames_in": run.status.video_frames_in,
                "video_frames_out": run.status.video_frames_out,
                "frame_to_result_ms": run.status.frame_to_result.as_dict(),
                "stages": {
                    stage.name: {**stage.latency.as_dict(), "dropped": stage.dropped}
                    for stage in run.status.stages
                },
            }
            for run in runs
        },
    }
