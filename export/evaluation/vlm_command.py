"""``orstream eval vlm``: a vision-language package on held-out phantom questions, answered
with and without reasoning, scored exactly (:mod:`orstream.export.evaluation.vlm`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--package", type=Path, required=True, help="vlm package (orstream export onnx)"
    )
    parser.add_argument("--data", type=Path, help="surgical phantom (PitVis layout)")
    parser.add_argument("--slides", type=Path, help="slide phantom (orstream slide phantom)")
    parser.add_argument(
        "--videos",
        type=int,
        nargs="+",
        metavar="N",
        help="cases to ask about (default: the held-out cases the package's training records)",
    )
    parser.add_argument(
        "--slide-names",
        nargs="+",
        metavar="NAME",
        help="slides to ask about (default: the held-out slides the training records)",
    )
    parser.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="default onnx")
    parser.add_argument(
        "--max-questions", type=int, metavar="N", help="ask at most N, spread over the list"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=96, help="longest answer (default 96)"
    )
    parser.add_argument("--answers", type=Path, help="write every answer to this JSON file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from orstream.export.evaluation.vlm import evaluate_vlm

    report = evaluate_vlm(
        args.package,
        args.data,
        args.slides,
        runtime=args.runtime,
        videos=args.videos,
        slide_names=args.slide_names,
        max_questions=args.max_questions,
        max_new_tokens=args.max_new_tokens,
        progress=lambda line: print(f"[eval] {line}", file=sys.stderr, flush=True),
    )
    if args.answers is not None:
        args.answers.write_text(json.dumps(report.answers, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0
    for label, scores in (
        ("with reasoning", report.with_reasoning),
        ("without reasoning", report.without_reasoning),
    ):
        print(
            f"{label:<18} accuracy {scores.accuracy:.3f}  format_ok {scores.format_ok:.3f}  "
            f"({scores.questions} questions, {report.runtime})"
        )
        for kind, accuracy in scores.by_type.items():
            print(f"  {kind:<20} {accuracy:.3f}")
    return 0
