"""``orstream bench reconnect``: a real RTSP camera killed and restored N times under one
runtime (see :mod:`orstream.edge.bench.reconnect`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from orstream.edge.models.shipped import SHIPPED_PACKAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench reconnect``."""
    parser.add_argument("--cycles", type=int, default=100, help="kill/restore cycles (100)")
    parser.add_argument("--up-s", type=float, default=2.0, help="camera up per cycle (2 s)")
    parser.add_argument("--down-s", type=float, default=2.0, help="camera away per cycle (2 s)")
    parser.add_argument(
        "--model", type=Path, default=SHIPPED_PACKAGE, help="workflow package (default: shipped)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the cycles and print the report; non-zero when a cycle did not resume."""
    from orstream.edge.bench.reconnect import bench_reconnect

    report = bench_reconnect(args.model, args.cycles, args.up_s, args.down_s, json_path=args.json)
    print(report.describe())
    return 0 if report.resumed == report.cycles else 1
