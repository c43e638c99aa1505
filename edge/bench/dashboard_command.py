"""``orstream bench dashboard``: the OR dashboard's glass-to-glass latency and the viewers one
edge serves (see :mod:`orstream.edge.bench.dashboard`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orstream.edge.models.shipped import SHIPPED_PACKAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench dashboard``."""
    parser.add_argument("--width", type=int, default=1280, help="phantom width (1280)")
    parser.add_argument("--height", type=int, default=720, help="phantom height (720)")
    parser.add_argument(
        "--fps", type=float, default=24.0, help="the stream's frame rate, phantom's too (24)"
    )
    parser.add_argument(
        "--source",
        metavar="URI",
        help="the stream instead of a phantom of --width x --height at --fps (e.g. "
        "videotestsrc://?width=1280&height=720&fps=24, which costs the edge no rendering)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured per round (20 s)")
    parser.add_argument(
        "--viewers",
        type=int,
        choices=range(1, 33),
        metavar="N",
        default=8,
        help="add viewers up to this many (1-32, default 8), one a round",
    )
    parser.add_argument(
        "--model", type=Path, default=SHIPPED_PACKAGE, help="workflow package (default: shipped)"
    )
    parser.add_argument("--no-model", action="store_true", help="run the edge without a model")
    parser.add_argument(
        "--chromium", type=Path, default=Path("/usr/bin/chromium"), help="the browser to drive"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the rounds (each on stderr as it ends) and print the report."""
    from orstream.edge.bench.dashboard import bench_dashboard

    source = args.source or (
        f"phantom://?seed=4&seconds=3600&width={args.width}&height={args.height}&fps={args.fps:g}"
    )
    report = bench_dashboard(
        source,
        args.fps,
        None if args.no_model else args.model,
        args.seconds,
        args.viewers,
        args.chromium,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(report.describe())
    if args.json is not None:
        args.json.write_text(report.as_json())
    return 0
