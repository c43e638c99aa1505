"""``orstream bench vlm``: the vision-language model's time to first token and tokens per
second, 1 and 4 concurrent requests, KV cache against recomputation, on ONNX Runtime and torch
(:mod:`orstream.export.bench.vlm_bench`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--package",
        type=Path,
        help="vlm package (orstream export onnx); without one, a gmai_vl_small of random "
        "weights is built and timed, and the report says so",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    parser.add_argument(
        "--runtimes", nargs="+", choices=("onnx", "torch"), default=["onnx", "torch"]
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=96,
        help="tokens per answer (default 96, an answer's default max_new_tokens)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch's device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from orstream.export.bench.vlm_bench import bench_vlm, random_package

    def progress(line: str) -> None:
        print(f"[bench] {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as folder:
        package = args.package
        if package is None:
            progress("no --package: timing gmai_vl_small with RANDOM weights")
            package = random_package(Path(folder), progress)
        report = bench_vlm(
            package,
            runtimes=tuple(args.runtimes),
            max_new_tokens=args.max_new_tokens,
            runs=args.runs,
            threads=args.threads,
            device=args.device,
            progress=progress,
        )
    if args.package is None:
        report["package"] = None
        report["model"] = "gmai_vl_small with RANDOM weights (no --package given)"
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(
        f"model {report['model']}  prompt {report['prompt_tokens']} tokens, "
        f"{report['max_new_tokens']} new, {report['threads']} thread(s)"
    )
    for name, figures in report["runtimes"].items():
        for key, value in figures.items():
            if key.startswith("kv_speedup"):
                print(f"  {name:<6} {key:<32} {value:.2f}x")
            else:
                print(
                    f"  {name:<6} {key:<32} ttft p50 {value['ttft_ms']['p50']:.1f} ms  p99 "
                    f"{value['ttft_ms']['p99']:.1f} ms  {value['tokens_per_s']:.1f} tokens/s"
                )
    return 0
