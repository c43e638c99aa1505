"""``orstream export batch``: give an existing package's graphs a dynamic batch, in place.

For packages exported at batch 1 (:mod:`orstream.export.onnx.batch.batch_package` says how and what
proves it); ``orstream export onnx`` writes dynamic-batch packages from checkpoints directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH

    parser.add_argument(
        "--package", type=Path, required=True, help="model package folder (card.json + model.onnx)"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help="rows per call the graphs are checked at and backends take by default "
        f"(default {DEFAULT_MAX_BATCH})",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.onnx.batch.batch_package import convert_package
    from orstream.export.onnx.models.workflow_export import progress_to_stderr

    result = convert_package(args.package, args.max_batch, progress_to_stderr)
    card = result.package.card
    print(f"package   {result.package.root}  batch dynamic, max_batch {card.max_batch}")
    for graph in result.graphs:
        path = result.package.graph_path(graph.graph)
        print(f"{graph.graph:<9} {path.name}: {len(graph.changes)} node(s) rewritten")
        for change in graph.changes:
            print(f"          {change}")
        golden, rows = graph.golden, graph.rows
        print(
            f"          golden check at batch 1 and {card.max_batch}: max abs diff "
            f"{golden.max_abs_diff:.2e} ({golden.output}, allowed {golden.allowed:.2e})"
        )
        print(
            f"          {rows.batch} different rows vs batch-1 calls: max abs diff "
            f"{rows.max_abs_diff:.2e} ({rows.output}, allowed {rows.allowed:.2e})"
        )
    if result.stale_engines:
        print(
            f"engines   {result.stale_engines} TensorRT engine(s) of the batch-1 graph are "
            f"refused from now on: rebuild with orstream export trt --package "
            f"{result.package.root}"
        )
    return 0
