"""``orstream bench gpu``: validate a GPU host in one run (what ``scripts/gpu_check.sh`` calls).

Imports, the torch backend's parity against the golden outputs, latency of the recognizer and
the segmenter at 1080p with GPU pre-processing with and without CUDA graphs, and how many
concurrent 1080p30 streams one GPU sustains under the p99 budget; a table at the end and every
figure in a JSON file. Nothing here needs GStreamer or Lightning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orstream.edge.models.shipped import SHIPPED_PACKAGE, SHIPPED_SEGMENTER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench gpu``."""
    parser.add_argument("--model", type=Path, default=SHIPPED_PACKAGE, help="workflow package")
    parser.add_argument(
        "--segmenter", type=Path, default=SHIPPED_SEGMENTER, help="segmenter package"
    )
    parser.add_argument(
        "--device", default="cuda:0", help="cuda:N, or cpu for a small trial run (default cuda:0)"
    )
    parser.add_argument(
        "--json", type=Path, default=Path("gpu_check.json"), help="where every figure goes"
    )
    parser.add_argument(
        "--max-streams", type=int, default=128, help="most concurrent streams tried (default 128)"
    )
    parser.add_argument(
        "--stream-seconds", type=float, default=6.0, help="length of one stream trial (default 6)"
    )
    parser.add_argument(
        "--iterations", type=int, default=300, help="timed calls per latency row (default 300)"
    )
    parser.add_argument("--width", type=int, default=1920, help="frame width (default 1920)")
    parser.add_argument("--height", type=int, default=1080, help="frame height (default 1080)")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=420.0,
        help="seconds the whole run may take; the stream search stops before a trial that "
        "would overrun it (default 420)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default="fp16",
        help="torch precision for latency and streams (default fp16; fp32 on cpu)",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.edge.bench.gpu import (
        GpuCheckSettings,
        GpuReport,
        format_report,
        run_gpu_check,
    )
    from orstream.errors import OrstreamError
    from orstream.package.loading import load_package

    if min(args.max_streams, args.iterations, args.stream_seconds, args.time_budget) <= 0:
        raise OrstreamError(
            "--max-streams, --iterations, --stream-seconds and --time-budget must be positive"
        )
    settings = GpuCheckSettings(
        device=args.device,
        size=(args.width, args.height),
        iterations=args.iterations,
        stream_seconds=args.stream_seconds,
        max_streams=args.max_streams,
        precision="fp32" if args.device == "cpu" else args.precision,
        time_budget_s=args.time_budget,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save(report: GpuReport) -> None:
        # Written whole each time, through a temporary file: a run stopped at any point
        # leaves the last complete document.
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(report.as_json(), indent=2) + "\n")
        partial.replace(args.json)

    report = run_gpu_check(
        load_package(args.model),
        load_package(args.segmenter),
        settings,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        saved=save,
    )
    print(format_report(report))
    print(f"every figure: {args.json}")
    failed = [row for row in report.parity if not row["ok"]]
    forbidden = report.imports.get("forbidden_imported")
    if failed or forbidden:
        print(
            f"gpu check FAILED: {len(failed)} parity row(s) failed; forbidden imports: "
            f"{forbidden or 'none'}",
            file=sys.stderr,
        )
        return 1
    return 0
