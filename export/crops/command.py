"""``orstream export crops``: the instrument classifier's training crops, from what a segmenter
package finds in phantom cases (:mod:`orstream.export.crops.render`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orstream.edge.models.shipped import SHIPPED_SEGMENTER

    parser.add_argument(
        "--segmenter",
        type=Path,
        default=SHIPPED_SEGMENTER,
        help="segmenter package whose finds are cropped (default: the shipped one)",
    )
    parser.add_argument(
        "--seeds", required=True, help="phantom seeds, one case each: e.g. 201-236,243-290"
    )
    parser.add_argument("--out", type=Path, required=True, help="crops file to write (.npz)")
    parser.add_argument("--seconds", type=int, default=120, help="case length (default 120)")
    parser.add_argument(
        "--every", type=float, default=1.0, metavar="S", help="seconds between frames (default 1)"
    )
    parser.add_argument("--height", type=int, default=360, help="frame height; 16:9 (default 360)")
    parser.add_argument(
        "--truth-copies",
        type=int,
        default=0,
        metavar="N",
        help="jittered crops of each true instrument mask per frame, on top of the finds "
        "(default 0: finds only, as for validation)",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.errors import OrstreamError
    from orstream.export.crops.render import parse_seeds, render_crops
    from orstream.segmentation.instrument_crop import write_crops

    if args.seconds < 1 or args.every <= 0 or args.height < 90 or args.truth_copies < 0:
        raise OrstreamError(
            "--seconds must be at least 1, --every above 0, --height at least 90 and "
            "--truth-copies at least 0"
        )
    if not args.out.parent.is_dir():
        raise OrstreamError(f"cannot write {args.out}: folder {args.out.parent} does not exist")
    size = (args.height, round(args.height * 16 / 9))
    crops = render_crops(
        args.segmenter, parse_seeds(args.seeds), args.seconds, args.every, size, args.truth_copies
    )
    write_crops(args.out, crops)
    counts = np.bincount(crops.labels, minlength=2)
    print(
        f"{args.out}: {len(crops)} crops from {len(set(crops.seeds.tolist()))} cases, "
        f"{len(crops) - counts[0]} of instruments, {counts[0]} of no instrument"
    )
    return 0
