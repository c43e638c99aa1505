"""``orstream bench capacity``: how many live streams one edge serves without losing a frame.

Plays N copies of a phantom case at real-time pace through the app that ships (recognizer at
its card's rate, batched across streams; overlay on every frame; with ``--record`` an H.264
recording per stream; with ``--segmenter`` live masks too) and finds the largest N for which
every stream's video path loses no frame and frame-to-result p99 stays within 50 ms. Prints each
trial (with CPU use) and, with ``--json``, writes ``streams``, ``trials`` (``streams``,
``p99_ms``, ``dropped``, ``cpu_percent`` and more each), ``width``, ``height`` and ``fps``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orstream.edge.models.shipped import SHIPPED_PACKAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench capacity``."""
    parser.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    parser.add_argument(
        "--seconds", type=int, default=20, help="length of each trial's case (default 20)"
    )
    parser.add_argument(
        "--model", type=Path, default=SHIPPED_PACKAGE, help="workflow package (default: shipped)"
    )
    parser.add_argument(
        "--segmenter", type=Path, help="also segment live with this package (default: no)"
    )
    parser.add_argument(
        "--record", action="store_true", help="record every stream as H.264 (default: no)"
    )
    parser.add_argument(
        "--max-streams", type=int, default=16, help="most streams tried (default 16)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Search, print every trial, and the count found."""
    from orstream.edge.bench.capacity import (
        CapacityReport,
        CapacitySettings,
        find_capacity,
        say_stderr,
        write_json,
    )
    from orstream.errors import OrstreamError

    if min(args.width, args.height, args.seconds, args.max_streams) < 1 or args.fps <= 0:
        raise OrstreamError(
            "--width, --height, --fps, --seconds and --max-streams must be positive"
        )
    settings = CapacitySettings(
        model=args.model,
        segmenter=args.segmenter,
        width=args.width,
        height=args.height,
        fps=args.fps,
        seconds=args.seconds,
        record=args.record,
        max_streams=args.max_streams,
    )

    def saved(report: CapacityReport) -> None:
        if args.json is not None:
            write_json(report, args.json)

    report = find_capacity(settings, say_stderr, saved)
    print(
        f"capacity: {report.streams} concurrent {args.width}x{args.height}@{args.fps:g} streams "
        f"with no video frame lost and frame-to-result p99 within {settings.budget_ms:g} ms "
        f"({len(report.trials)} trials)"
    )
    return 0
