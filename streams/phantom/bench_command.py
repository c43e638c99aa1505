"""``orstream bench phantom``: phantom rendering speed on one core, against real time."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench phantom``."""
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="video time to render and time (default 10)"
    )
    parser.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="case seed (default 0)")
    parser.add_argument("--difficulty", default="normal", choices=("easy", "normal", "hard"))
    parser.add_argument(
        "--case-seconds",
        type=int,
        default=600,
        help="length of the case the frames are drawn from, so every step, "
        "out-of-patient segment and instrument is covered (default 600)",
    )
    parser.add_argument("--no-encode", action="store_true", help="skip timing the H.264 encoder")
    parser.add_argument(
        "--labels",
        action="store_true",
        help="also draw the instrument mask and anatomy mask of every frame "
        "(phantom make draws them once per second)",
    )


def pin_to_one_core() -> str:
    """Run this process, numba and OpenCV on a single core; returns where it is pinned."""
    import cv2
    import numba

    numba.set_num_threads(1)
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def chunk_starts(case_frames: int, frames: int, chunks: int) -> list[int]:
    """First frames of ``chunks`` runs of consecutive frames spread evenly over the case."""
    per = frames // chunks
    step = max(1, (case_frames - per) // max(1, chunks - 1))
    return [min(i * step, max(0, case_frames - per)) for i in range(chunks)]


def run(args: argparse.Namespace) -> int:
    """Time the renderer (and the encoder) and print frames/s, real-time ratio, percentiles."""
    import numpy as np

    from orstream.errors import OrstreamError
    from orstream.latency import LatencySummary
    from orstream.streams.phantom.difficulty import get_difficulty
    from orstream.streams.phantom.renderer import CaseRenderer
    from orstream.streams.phantom.writer import PhantomSpec
    from orstream.streams.sources.video_file import H264Writer

    if args.seconds <= 0:
        raise OrstreamError(f"--seconds must be positive (got {args.seconds:g})")
    case_seconds = max(args.case_seconds, int(np.ceil(args.seconds)))
    PhantomSpec(
        1, case_seconds, args.seed, args.difficulty, args.width, args.height, args.fps
    ).check()
    where = pin_to_one_core()
    started = time.perf_counter()
    renderer = CaseRenderer(
        args.seed,
        1,
        case_seconds,
        get_difficulty(args.difficulty),
        args.width,
        args.height,
        args.fps,
    )
    precompute_s = time.perf_counter() - started
    frames = max(1, round(args.seconds * args.fps))
    chunks = min(10, frames)
    starts = chunk_starts(renderer.frame_count, frames, chunks)
    indices = [s + k for s in starts for k in range(frames // chunks)]
    indices += [starts[-1] + frames // chunks + k for k in range(frames - len(indices))]
    canvas = np.zeros((args.height, args.width, 3), np.uint8)
    mask = np.zeros((args.height, args.width), np.uint8) if args.labels else None
    anatomy = np.zeros((args.height, args.width), np.uint8) if args.labels else None

    def draw(index: int) -> None:
        if mask is not None and anatomy is not None:
            mask.fill(0)
            anatomy.fill(0)
        renderer.render(index, canvas, mask, anatomy)

    for index in indices[:: max(1, len(indices) // 8)]:
        draw(index)  # warm-up: JIT/cache load and first-touch of textures
    times = np.empty(len(indices))
    for k, index in enumerate(indices):
        t0 = time.perf_counter_ns()
        draw(index)
        times[k] = (time.perf_counter_ns() - t0) / 1e6
    render_fps = 1000.0 * len(times) / times.sum()
    print(
        f"phantom render: {args.width}x{args.height} @ {args.fps:g} fps, difficulty "
        f"{args.difficulty}, 1 thread, {where}"
        + (", with instrument and anatomy masks" if args.labels else "")
    )
    print(
        f"  precompute (case of {case_seconds} s: {len(renderer.scenes)} scenes, "
        f"{len(renderer.sprites)} instruments): {precompute_s:.1f} s"
    )
    print(
        f"  render: {len(times)} frames from {chunks} places in the case, "
        f"{render_fps:.1f} frames/s = {render_fps / args.fps:.2f}x real time"
    )
    print(f"  per frame: {LatencySummary.of(times).describe()}")
    if args.no_encode:
        return 0
    encode = np.empty(len(indices))
    with (
        tempfile.TemporaryDirectory() as folder,
        H264Writer(Path(folder) / "bench.mp4", args.width, args.height, args.fps) as out,
    ):
        for k, index in enumerate(indices):
            image = renderer.render(index, canvas).image
            t0 = time.perf_counter_ns()
            out.write(image)
            encode[k] = (time.perf_counter_ns() - t0) / 1e6
    encode_fps = 1000.0 * len(encode) / encode.sum()
    both_fps = 1000.0 * len(encode) / (encode.sum() + times.sum())
    print(
        f"  encode (libx264 veryfast, crf 18, 1 thread): {encode_fps:.1f} frames/s = "
        f"{encode_fps / args.fps:.2f}x real time"
    )
    print(f"  render + encode: {both_fps:.1f} frames/s = {both_fps / args.fps:.2f}x real time")
    return 0
