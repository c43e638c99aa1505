"""``orstream slide phantom``: write phantom whole-slide images with exact ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream slide phantom``."""
    from orstream.slides.phantom.dataset_writer import DEFAULT_SIZE

    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument("--slides", type=int, required=True, help="number of slides")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"level-0 width and height in pixels at 0.5 µm/px (default {DEFAULT_SIZE})",
    )


def run(args: argparse.Namespace) -> int:
    """Render, write and label the slides."""
    from orstream.slides.phantom.dataset_writer import write_slide_dataset

    seconds = write_slide_dataset(args.out, args.slides, args.seed, args.size)
    print(f"wrote {args.slides} phantom slide(s) to {args.out} ({seconds:.1f} s per slide)")
    return 0
