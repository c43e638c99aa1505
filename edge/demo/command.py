"""``orstream demo``: the main job end to end on a phantom case the shipped model never saw.

A fresh phantom case (1280x720, 24 fps) plays live, at real-time pace, through the whole
edge runtime: the shipped PitVis workflow package infers online at its card's rate, the
overlay video is recorded as H.264, the gRPC API serves results while it runs, and the
PitVis submission CSVs are written and scored against the phantom's ground truth with the
official PitVis metrics. The shipped segmenter draws live instrument and anatomy masks, and a
gRPC client of the demo's own API scores them, and the masks its box prompts get back, against
the phantom's exact masks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orstream.edge.models.shipped import SHIPPED_CLASSIFIER, SHIPPED_PACKAGE, SHIPPED_SEGMENTER

DEMO_SECONDS = 120
DEMO_SEED = 424242
"""Phantom seed of the demo case; the shipped model was trained on other seeds."""


def add_segmenter_arguments(parser: argparse.ArgumentParser, without: str) -> None:
    """``--segmenter PKG`` and ``--classifier PKG`` (the shipped ones by default) and
    ``--no-segmentation``."""
    parser.add_argument(
        "--segmenter",
        type=Path,
        default=SHIPPED_SEGMENTER,
        help="interactive segmentation package (default: the shipped one)",
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        default=SHIPPED_CLASSIFIER,
        help="instrument classifier package naming the live masks (default: the shipped one)",
    )
    parser.add_argument("--no-segmentation", action="store_true", help=without)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream demo``."""
    parser.add_argument(
        "--out",
        type=Path,
        help="keep everything the demo writes in this folder "
        "(a new or empty one), with summary.json; default: a temporary folder",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=SHIPPED_PACKAGE,
        help="workflow model package (default: the shipped one)",
    )
    add_segmenter_arguments(parser, "run without live masks and prompts")
    parser.add_argument(
        "--seconds",
        type=int,
        default=DEMO_SECONDS,
        help=f"length of the case in seconds; it plays in real time (default {DEMO_SECONDS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEMO_SEED,
        help=f"phantom seed of the case (default {DEMO_SEED})",
    )
    parser.add_argument("--backend", default="onnxruntime", help="inference backend")
    parser.add_argument(
        "--grpc",
        default="127.0.0.1:50051",
        metavar="HOST:PORT",
        help="where the gRPC API listens while the demo runs (port 0: any free port)",
    )


def run(args: argparse.Namespace) -> int:
    """Make the case, run the model online over it, write and score the results."""
    import tempfile

    from orstream.edge.demo.run import run_demo

    segmenter = None if args.no_segmentation else args.segmenter
    options = (
        args.model,
        segmenter,
        args.classifier,
        args.seconds,
        args.seed,
        args.backend,
        args.grpc,
    )
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="orstream-demo-") as scratch:
            run_demo(Path(scratch), *options, summary=False)
    else:
        run_demo(args.out, *options, summary=True)
    return 0
