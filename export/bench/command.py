"""``orstream export bench``: every backend this host can run, on one package, side by side.

Latency p50/p99/p99.9 per call, calls per second, the ratio to ONNX Runtime on CPU and the
largest output difference from it, all measured in one run on the package's golden inputs.
``--batch N`` (a package with a dynamic batch) times calls of N rows beside N calls of one
row: per call, per frame and the gain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", type=Path, required=True, help="model package folder")
    parser.add_argument(
        "--graph",
        choices=("model", "decoder", "text", "detokenizer"),
        default="model",
        help="which graph: model.onnx, the prompt decoder of a segmenter or the text encoder "
        "of a video-text package (default model)",
    )
    parser.add_argument(
        "--device",
        help="CUDA device for the GPU configurations, e.g. cuda:0, or cpu for CPU ones only "
        "(default: the first CUDA device torch sees, if any)",
    )
    parser.add_argument(
        "--iterations", type=int, default=200, help="timed calls per backend (default 200)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="rows per call, for a package with a dynamic batch: calls of N rows are timed "
        "beside the same N rows one call each (default 1)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object keyed by backend instead of the table",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.bench.backends import (
        backend_configs,
        bench_package,
        cuda_devices,
        format_table,
    )
    from orstream.package.loading import load_package

    package = load_package(args.package)
    devices = cuda_devices()
    device = args.device or (devices[0] if devices else None)
    if device == "cpu":
        device = None
    figures, skipped = bench_package(
        package,
        backend_configs(device),
        graph=args.graph,
        iterations=args.iterations,
        warmup=args.warmup,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        batch=args.batch,
    )
    if args.json:
        print(json.dumps({row.label: row.as_json() for row in figures}, indent=2))
    else:
        print(format_table(figures, skipped))
    return 0
