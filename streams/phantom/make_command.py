"""``orstream phantom make``: write a phantom dataset in the PitVis layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream phantom make``."""
    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument("--cases", type=int, required=True, help="number of cases (videos)")
    parser.add_argument("--seconds", type=int, required=True, help="length of each case")
    parser.add_argument(
        "--max-seconds",
        type=int,
        help="spread case lengths evenly from --seconds (first case) to this (last case)",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--difficulty",
        default="normal",
        choices=("easy", "normal", "hard"),
        help="how hard steps and instruments are to recognise",
    )
    parser.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    parser.add_argument(
        "--first-video",
        type=int,
        default=1,
        help="number of the first video (e.g. 21 for held-out cases)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="cases rendered in parallel")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the phantom files of a non-empty --out"
    )


def run(args: argparse.Namespace) -> int:
    """Render, encode and label the cases."""
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    spec = PhantomSpec(
        cases=args.cases,
        seconds=args.seconds,
        seed=args.seed,
        difficulty=args.difficulty,
        width=args.width,
        height=args.height,
        fps=args.fps,
        first_video=args.first_video,
        max_seconds=args.max_seconds,
    )
    write_dataset(spec, args.out, overwrite=args.overwrite, jobs=args.jobs)
    lengths = sorted({spec.case_seconds(video) for video in spec.videos})
    span = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
    print(f"wrote {spec.cases} phantom case(s) of {span} s to {args.out}")
    return 0
