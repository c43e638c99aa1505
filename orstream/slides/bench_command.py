"""``orstream bench wsi``: slide analysis speed against OpenSlide reading alone, and peak memory.

Speed: on one slide (a phantom slide written for the run unless ``--slide`` names one), the
whole analysis (opening, tissue detection, tile planning, reading and encoding every tile, the
slide encoder) runs against OpenSlide's ``read_region`` alone on the same tiles in one thread,
the plain loop any slide tool has; rounds alternate, so both see the same page cache and
machine load, and the ratio of their median tiles per second is the result (1.0: analysis is
as fast as reading alone). The patch encoder alone on the same tiles, already in memory, shows
what bounds the analysis: with reading and encoding overlapped, analysis runs at about the
slower of the two (``overlap``: analysis / the slower one); reading and encoding in turn on one
thread (``serial``) is what the overlap gains on. Per-tile read times and per-batch analysis and
encoding times give p50 and p99.

Memory: ``--memory-slide`` analyses that slide (e.g. a 100,000 px phantom) in a fresh process
(``orstream wsi analyze``) and reports its peak resident memory, so nothing this process
loaded counts.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orstream.slides.slide_analysis import DEFAULT_BATCH

BENCH_SIZE = 20000
BENCH_SEED = 3
SLOW_NOTE = "analysis below 0.8 of reading alone"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench wsi``."""
    parser.add_argument("--slide", type=Path, help="slide to time (default: a phantom slide)")
    parser.add_argument(
        "--size", type=int, default=BENCH_SIZE,
        help=f"side of the phantom slide written when --slide is not given (default {BENCH_SIZE})",
    )  # fmt: skip
    parser.add_argument(
        "--package", type=Path, help="slide package (default: the one shipped with orstream)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode (default 3)")
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per encoder call ({DEFAULT_BATCH})"
    )
    parser.add_argument("--readers", type=int, help="tile reader threads (default: half the CPUs)")
    parser.add_argument(
        "--memory-slide", type=Path, help="analyse this slide in a fresh process: peak RSS"
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here (JSON)")


def run(args: argparse.Namespace) -> int:
    """Measure, print, and write the JSON report."""
    from orstream.errors import OrstreamError

    if args.rounds < 1 or args.batch < 1:
        raise OrstreamError("--rounds and --batch must be at least 1")
    with tempfile.TemporaryDirectory(prefix="orstream-bench-wsi-") as scratch:
        slide = args.slide or _phantom_slide(Path(scratch), args.size)
        report: dict[str, Any] = {"speed": _speed(slide, args)}
    if args.memory_slide is not None:
        report["memory"] = _memory(args.memory_slide, args.package)
    _print(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _phantom_slide(folder: Path, size: int) -> Path:
    from orstream.slides.phantom.dataset_writer import write_slide_dataset

    print(f"writing a {size} px phantom slide to time", file=sys.stderr)
    write_slide_dataset(folder / "phantom", 1, BENCH_SEED, size)
    return folder / "phantom" / "slides" / "slide_001.tiff"


def _speed(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from orstream.latency import LatencySummary
    from orstream.slides.slide_analysis import analyze_slide, reader_threads
    from orstream.slides.slide_models import SlideModels

    models = SlideModels(args.package)
    readers = args.readers or reader_threads()
    reads: list[float] = []
    batches: list[float] = []
    encodes: list[float] = []
    read_rates: list[float] = []
    analysis_rates: list[float] = []
    encode_rates: list[float] = []
    tissue_seconds: list[float] = []
    serial_rates: list[float] = []
    grid = analyze_slide(path, models, batch=args.batch, readers=readers).grid  # warm-up
    if len(grid) == 0:
        from orstream.errors import OrstreamError

        raise OrstreamError(f"{path}: no tissue tiles to time")
    for _ in range(args.rounds):
        seconds = _read_only(path, grid, reads)
        read_rates.append(len(grid) / seconds)
        clock = _BatchClock(batches)
        analysis = analyze_slide(path, models, batch=args.batch, readers=readers, on_tiles=clock)
        analysis_rates.append(len(grid) / analysis.seconds["total"])
        tissue_seconds.append(analysis.seconds["tissue"])
        encode_rates.append(len(grid) / _encode_only(path, grid, models, args.batch, encodes))
        serial_rates.append(len(grid) / _serial(path, grid, models, args.batch))
    read_rate = statistics.median(read_rates)
    analysis_rate = statistics.median(analysis_rates)
    encode_rate = statistics.median(encode_rates)
    return {
        "slide": str(path),
        "tiles": len(grid),
        "tile": grid.tile,
        "tile_mpp": grid.mpp,
        "read_level": grid.level,
        "read_size": grid.read_size,
        "rounds": args.rounds,
        "batch": args.batch,
        "readers": readers,
        "onnxruntime_threads": models.threads,
        "read_only_tiles_per_s": round(read_rate, 1),
        "analysis_tiles_per_s": round(analysis_rate, 1),
        "encode_only_tiles_per_s": round(encode_rate, 1),
        "serial_tiles_per_s": round(statistics.median(serial_rates), 1),
        "tissue_s": round(statistics.median(tissue_seconds), 3),
        "ratio": round(analysis_rate / read_rate, 3),
        "overlap": round(analysis_rate / min(read_rate, encode_rate), 3),
        "read_ms_per_tile": LatencySummary.of(reads).as_dict(),
        "analysis_ms_per_batch": LatencySummary.of(batches).as_dict(),
        "encode_ms_per_batch": LatencySummary.of(encodes).as_dict(),
    }


def _encode_only(path: Path, grid: Any, models: Any, batch: int, times: list[float]) -> float:
    """Seconds the patch encoder takes over every tile of ``grid``, read beforehand."""

    from orstream.slides.slide_file import open_slide
    from orstream.slides.tile_reader import read_batch

    with open_slide(path) as slide:
        tiles = read_batch(slide, grid, grid.corners)
    started = time.perf_counter()
    for start in range(0, len(tiles), batch):
        begun = time.perf_counter()
        models.encode(tiles[start : start + batch])
        times.append(1000 * (time.perf_counter() - begun))
    return time.perf_counter() - started


class _BatchClock:
    """Milliseconds between an analysis's tile reports: one batch read and encoded each."""

    def __init__(self, times: list[float]) -> None:
        self._times = times
        self._last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done:
            self._times.append(1000 * (now - self._last))
        self._last = now


def _serial(path: Path, grid: Any, models: Any, batch: int) -> float:
    """Seconds to read and encode every tile of ``grid`` in turn on one thread, batch by
    batch: the analysis's tile phase without its reader threads."""
    from orstream.slides.slide_file import open_slide
    from orstream.slides.tile_reader import read_batch

    started = time.perf_counter()
    with open_slide(path) as slide:
        for start in range(0, len(grid), batch):
            models.encode(read_batch(slide, grid, grid.corners[start : start + batch]))
    return time.perf_counter() - started


def _read_only(path: Path, grid: Any, times: list[float]) -> float:
    """Seconds to read every tile of ``grid`` with OpenSlide's read_region on one thread."""
    import numpy as np
    import openslide

    size = (grid.read_size, grid.read_size)
    started = time.perf_counter()
    with openslide.OpenSlide(str(path)) as handle:
        for x, y in grid.corners:
            begun = time.perf_counter()
            np.asarray(handle.read_region((int(x), int(y)), grid.level, size))
            times.append(1000 * (time.perf_counter() - begun))
    return time.perf_counter() - started


def _memory(path: Path, package: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "orstream.cli", "wsi", "analyze", "--slide", str(path)]
    command += ["--json"] + (["--package", str(package)] if package else [])
    print(f"analysing {path} in a fresh process for its peak memory", file=sys.stderr)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        from orstream.errors import OrstreamError

        raise OrstreamError(f"analysing {path} failed: {result.stderr.strip()[-300:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(result.stdout)
    return {
        "slide": str(path),
        "width": report["width"],
        "height": report["height"],
        "tiles": report["tiles"],
        "seconds": round(seconds, 1),
        "tiles_per_s": round(report["tiles"] / report["seconds"]["total"], 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_rss_measured": peak_kib > before,
    }


def _print(report: dict[str, Any]) -> None:
    speed = report["speed"]
    reads, batches = speed["read_ms_per_tile"], speed["analysis_ms_per_batch"]
    print(
        f"slide {speed['slide']}: {speed['tiles']} tiles of {speed['tile']} px at "
        f"{speed['tile_mpp']:g} µm/px (level {speed['read_level']}, {speed['read_size']} px)"
    )
    print(
        f"  read_region alone, 1 thread: {speed['read_only_tiles_per_s']:.1f} tiles/s "
        f"(per tile p50 {reads['p50']:.2f} ms, p99 {reads['p99']:.2f} ms)"
    )
    print(
        f"  analysis ({speed['readers']} reader(s), {speed['onnxruntime_threads']} ONNX Runtime "
        f"thread(s)): {speed['analysis_tiles_per_s']:.1f} tiles/s (per batch of "
        f"{speed['batch']}: p50 {batches['p50']:.1f} ms, p99 {batches['p99']:.1f} ms; opening, "
        f"tissue and tile plan {speed['tissue_s']:.3f} s)"
    )
    encodes = speed["encode_ms_per_batch"]
    print(
        f"  patch encoder alone on tiles in memory: {speed['encode_only_tiles_per_s']:.1f} "
        f"tiles/s (per batch p50 {encodes['p50']:.1f} ms, p99 {encodes['p99']:.1f} ms)"
    )
    print(
        f"  reading then encoding on one thread: {speed['serial_tiles_per_s']:.1f} tiles/s "
        "(no overlap)"
    )
    note = "" if speed["ratio"] >= 0.8 else f"  ({SLOW_NOTE})"
    print(f"  ratio analysis / read-only: {speed['ratio']:.3f}{note}")
    print(f"  overlap: analysis / the slower of reading and encoding: {speed['overlap']:.3f}")
    memory = report.get("memory")
    if memory:
        print(
            f"memory {memory['slide']} ({memory['width']} x {memory['height']} px, "
            f"{memory['tiles']} tiles): peak RSS {memory['peak_rss_mib']:.0f} MiB, "
            f"{memory['tiles_per_s']:.1f} tiles/s, {memory['seconds']:.0f} s in all"
        )
