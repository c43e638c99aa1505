"""``orstream demo``: the main job end to end on a phantom case the shipped model never saw.

It renders a fresh phantom case (1280x720, 24 fps, H.264), plays the file through the shipped
PitVis workflow package frame by frame (online: each prediction uses frames up to its time,
sampled at the card's rate), writes the PitVis submission CSVs, and scores them against the
phantom's ground truth with the official PitVis metrics.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHIPPED_PACKAGE = Path(__file__).resolve().parent / "packages" / "pitvis_workflow"
DEMO_SECONDS = 240
DEMO_SEED = 424242
"""Phantom seed of the demo case; the shipped model was trained on other seeds."""


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
    parser.add_argument(
        "--seconds",
        type=int,
        default=DEMO_SECONDS,
        help=f"length of the case (default {DEMO_SECONDS}, the length of the shipped model's "
        "training cases)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEMO_SEED,
        help=f"phantom seed of the case (default {DEMO_SEED})",
    )
    parser.add_argument("--backend", default="onnxruntime", help="inference backend")


def run(args: argparse.Namespace) -> int:
    """Make the case, run the model online over it, write and score the results."""
    import tempfile

    from orstream.edge.demo import run_demo

    options = (args.model, args.seconds, args.seed, args.backend)
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="orstream-demo-") as scratch:
            run_demo(Path(scratch), *options, summary=False)
    else:
        run_demo(args.out, *options, summary=True)
    return 0
