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

from orstream.edge.app.config import EdgeConfig, parse_config
from orstream.edge.app.session import describe_status
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.status import RuntimeStatus
from orstream.streams.sources.video_file import probe_video

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
    from orstream.edge.app.compose import EdgeApp, SinkSpec
    from orstream.streams.sinks.memory import MemorySink

    # A sink that keeps nothing, so the overlay is drawn on every frame as for a display.
    sink = MemorySink(keep_images=False)
    app = EdgeApp(config, sinks={"bench": [SinkSpec("memory", lambda w, h, fps: sink)]})
    started = time.perf_counter()
    app.run()
    wall = time.perf_counter() - started
    status = app.status()
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
    segmentation: bool = False
    instruments: str = "recognizer"
    """What names the recognizer's instruments (``model.instruments``)."""


PLANS = (
    RunPlan("video path only", None, record=False, realtime=False),
    RunPlan("null model", "null", record=False, realtime=False),
    RunPlan("model", "onnxruntime", record=False, realtime=False),
    RunPlan("model + H.264 record", "onnxruntime", record=True, realtime=False),
    RunPlan("live: model + record", "onnxruntime", record=True, realtime=True),
)
"""Flat-out runs price each part against decoding; the live run gives the latencies."""

SEGMENTATION_PLAN = RunPlan(
    "live: + segmentation", "onnxruntime", record=True, realtime=True, segmentation=True
)
"""The live run again with live masks: what segmentation costs the video and the recognizer."""

MASK_INSTRUMENTS_PLAN = RunPlan(
    "live: + mask instruments",
    "onnxruntime",
    record=True,
    realtime=True,
    segmentation=True,
    instruments="masks",
)
"""Live masks naming the recognizer's instruments too: each result waits for its frame's masks,
which is what naming costs it."""

SEGMENTER_SAMPLES = 40
"""Frames the segmenter's encoder and decoder are timed on, spread over the file."""


@dataclass(frozen=True)
class SegmenterFigures:
    """The segmenter's halves timed one call at a time on frames of the file."""

    encoder: LatencySummary
    decoder_box: LatencySummary
    decoder_text: LatencySummary
    backend: str


def segmenter_latencies(package: Path, source: Path, frames: int) -> SegmenterFigures:
    """Encoder and decoder latency of a segmenter package on ``SEGMENTER_SAMPLES`` frames."""
    import numpy as np

    from orstream.edge.models.segmenter_model import SegmenterModel
    from orstream.package.loading import load_package
    from orstream.segmentation.prompts import Prompt
    from orstream.streams.sources.pyav_source import PyAVSource

    model = SegmenterModel.load(load_package(package))
    wanted = set(np.linspace(0, frames - 1, SEGMENTER_SAMPLES).astype(int).tolist())
    text = next(iter(model.classes))
    encoder, box, by_text = [], [], []
    reader = PyAVSource(source, stream_id="bench")
    try:
        for frame in reader.frames(wanted):
            image = np.asarray(frame.image)
            height, width = image.shape[:2]
            started = time.perf_counter()
            embedding = model.embed(image)
            encoder.append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            model.segment(
                embedding, Prompt(box=(width * 0.3, height * 0.3, width * 0.6, height * 0.7))
            )
            box.append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            model.segment(embedding, Prompt(text=text))
            by_text.append((time.perf_counter() - started) * 1e3)
    finally:
        reader.close()
    return SegmenterFigures(
        LatencySummary.of(encoder),
        LatencySummary.of(box),
        LatencySummary.of(by_text),
        model.encoder.name,
    )


def _config(
    plan: RunPlan,
    source: Path,
    record: Path,
    model: Path,
    rate: float | None,
    segmenter: Path | None = None,
    segmentation_rate: float | None = None,
    classifier: Path | None = None,
) -> EdgeConfig:
    data: dict = {
        "source": {"uri": str(source), "stream_id": "bench", "realtime": plan.realtime},
        "grpc": {"enabled": False},
    }
    if plan.record:
        data["record"] = {"path": str(record)}
    if plan.backend is not None:
        data["model"] = {
            "package": str(model),
            "backends": [plan.backend],
            "rate_hz": rate,
            "instruments": plan.instruments,
        }
    if plan.segmentation:
        data["segmentation"] = {
            "package": str(segmenter),
            "classifier": None if classifier is None else str(classifier),
            "rate_hz": segmentation_rate,
        }
    return parse_config(data, "bench")


def bench_runtime(
    source: Path | None,
    model: Path,
    seconds: int,
    size: tuple[int, int],
    model_rate: float | None,
    json_path: Path | None,
    segmenter: Path | None = None,
    segmentation_rate: float | None = None,
    classifier: Path | None = None,
) -> dict[str, object]:
    """Measure and print; returns the figures (also written to ``json_path`` if given).

    With a ``segmenter`` package it also times the segmenter's encoder and decoder and repeats
    the live run with live segmentation (instruments named by ``classifier``).
    """
    with tempfile.TemporaryDirectory(prefix="orstream-bench-") as scratch:
        work = Path(scratch)
        if source is None:
            from orstream.pitvis.layout import video_path
            from orstream.streams.phantom.writer import PhantomSpec, write_dataset

            width, height = size
            _say(f"rendering a {seconds} s {width}x{height} phantom case (seed {PHANTOM_SEED})")
            spec = PhantomSpec(
                cases=1, seconds=seconds, seed=PHANTOM_SEED, width=width, height=height
            )
            write_dataset(spec, work / "phantom")
            source = video_path(work / "phantom", spec.first_video)
        info = probe_video(source)
        frames = info.frame_count
        _say(f"{source.name}: {info.width}x{info.height}, {frames} frames at {info.fps:g} fps")
        decode_fps = decode_only_fps(source, frames)
        _say(f"decode only: {decode_fps:.1f} frames/s")
        runs: list[RunFigures] = []
        plans: tuple[RunPlan, ...] = PLANS
        if segmenter is not None:
            plans += (SEGMENTATION_PLAN,)
            if classifier is not None:
                plans += (MASK_INSTRUMENTS_PLAN,)
        for plan in plans:
            pace = f" (real time, {info.duration_s:.0f} s)" if plan.realtime else ""
            _say(f"running: {plan.name}{pace}")
            config = _config(
                plan,
                source,
                work / f"{len(runs)}.mp4",
                model,
                model_rate,
                segmenter,
                segmentation_rate,
                classifier,
            )
            runs.append(_run(plan.name, config, frames))
        halves = None
        if segmenter is not None:
            _say(f"timing the segmenter's encoder and decoder on {SEGMENTER_SAMPLES} frames")
            halves = segmenter_latencies(segmenter, source, frames)
    figures = _report(source, frames, info.fps, decode_fps, runs)
    by_name = {run.name: run for run in runs}
    if halves is not None:
        figures["segmenter"] = _report_segmentation(
            halves, by_name[PLANS[-1].name], by_name[SEGMENTATION_PLAN.name]
        )
    if MASK_INSTRUMENTS_PLAN.name in by_name:
        figures["mask_instruments"] = _report_mask_instruments(
            by_name[SEGMENTATION_PLAN.name], by_name[MASK_INSTRUMENTS_PLAN.name]
        )
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        _say(f"wrote {json_path}")
    return figures


def _inference_p50(run: RunFigures) -> float:
    return next(stage.latency.p50 for stage in run.status.stages if stage.name == "workflow")


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
    live = by_name[PLANS[-1].name]
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


def _report_segmentation(
    halves: SegmenterFigures, without: RunFigures, live: RunFigures
) -> dict[str, object]:
    print(f"segmenter ({halves.backend}), one call at a time on {SEGMENTER_SAMPLES} frames:")
    print(f"  image encoder         {halves.encoder.describe()}")
    print(f"  decoder, box prompt   {halves.decoder_box.describe()}")
    print(f"  decoder, text prompt  {halves.decoder_text.describe()}")
    stage = next(s for s in live.status.stages if s.name == "segmentation")
    model = live.status.models[-1]  # the segmenter comes after the recognizer
    segmented_fps = stage.processed / live.wall_s
    print(
        f"live segmentation: {segmented_fps:.2f} frames/s segmented (asked {model.rate_hz:g}), "
        f"{stage.dropped} sampled frames dropped for a newer one, per frame "
        f"{stage.latency.describe()}"
    )
    print(
        f"video path with / without live segmentation: "
        f"{live.status.video_frames_out} / {without.status.video_frames_out} frames out, "
        f"frame-to-result p99 {live.status.frame_to_result.p99:.1f} / "
        f"{without.status.frame_to_result.p99:.1f} ms"
    )
    return {
        "backend": halves.backend,
        "encoder_ms": halves.encoder.as_dict(),
        "decoder_box_ms": halves.decoder_box.as_dict(),
        "decoder_text_ms": halves.decoder_text.as_dict(),
        "live_segmented_fps": segmented_fps,
        "live_rate_hz": model.rate_hz,
        "live_segmentation_ms": stage.latency.as_dict(),
        "live_segmentation_dropped": stage.dropped,
    }


def _report_mask_instruments(by_head: RunFigures, by_masks: RunFigures) -> dict[str, object]:
    head, masks = by_head.status.frame_to_result, by_masks.status.frame_to_result
    print(
        "recognizer results, instruments by its head / by the masks of their frames: "
        f"frame-to-result p50 {head.p50:.1f} / {masks.p50:.1f} ms, p99 {head.p99:.1f} / "
        f"{masks.p99:.1f} ms; video frames out {by_head.status.video_frames_out} / "
        f"{by_masks.status.video_frames_out}"
    )
    return {
        "frame_to_result_by_head_ms": head.as_dict(),
        "frame_to_result_by_masks_ms": masks.as_dict(),
    }
