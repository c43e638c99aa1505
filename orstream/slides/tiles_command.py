"""``orstream slide tiles``: a user's first check that a slide reads and where it has tissue.

Prints the slide's levels, microns per pixel, tissue fraction and tile count at the target
magnification, reads the first tile (so a slide that opens but cannot be decoded says so
here), and optionally writes the tissue mask and tile grid over a thumbnail as a PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream slide tiles``."""
    parser.add_argument("--slide", type=Path, required=True, help="any slide OpenSlide opens")
    parser.add_argument("--mpp", type=float, default=0.5, help="µm per tile pixel (default 0.5)")
    parser.add_argument("--tile", type=int, default=224, help="tile side in pixels (default 224)")
    parser.add_argument(
        "--min-tissue",
        type=float,
        default=0.5,
        help="share of a tile the tissue mask must cover to keep it (default 0.5)",
    )
    parser.add_argument(
        "--slide-mpp", type=float, help="the slide's level-0 µm per pixel, if it does not say"
    )
    parser.add_argument("--out", type=Path, help="write the tissue and tile grid here (PNG)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Open, find tissue, plan tiles, read one, report."""
    import cv2

    from orstream.errors import OrstreamError
    from orstream.slides.overview_image import draw_overview
    from orstream.slides.slide_file import open_slide
    from orstream.slides.tile_grid import plan_tiles
    from orstream.slides.tile_reader import read_tiles
    from orstream.slides.tissue_mask import detect_tissue

    with open_slide(args.slide) as slide:
        tissue = detect_tissue(slide)
        grid = plan_tiles(slide, tissue, args.mpp, args.tile, args.min_tissue, args.slide_mpp)
        next(read_tiles(slide, grid), None)
        report = {
            "slide": str(args.slide),
            "vendor": slide.vendor,
            "levels": [[lv.width, lv.height, lv.downsample] for lv in slide.levels],
            "mpp": list(slide.mpp) if slide.mpp else None,
            "tissue_fraction": round(tissue.fraction, 4),
            "tile": args.tile,
            "tile_mpp": args.mpp,
            "read_level": grid.level,
            "read_size": grid.read_size,
            "tiles": len(grid),
        }
    if args.out is not None:
        overview = draw_overview(tissue, grid)
        if not cv2.imwrite(str(args.out), cv2.cvtColor(overview, cv2.COLOR_RGB2BGR)):
            raise OrstreamError(f"{args.out}: cannot write the PNG")
    if args.json:
        print(json.dumps(report))
        return 0
    mpp = "{:g} x {:g} µm/px".format(*slide.mpp) if slide.mpp else "unknown"
    print(f"slide: {args.slide} ({slide.vendor})")
    for index, level in enumerate(slide.levels):
        print(f"level {index}: {level.width} x {level.height} (downsample {level.downsample:g})")
    print(f"mpp: {mpp}")
    print(f"tissue: {100 * tissue.fraction:.1f}% of the slide")
    print(
        f"tiles: {len(grid)} of {args.tile} px at {args.mpp:g} µm/px, read at level "
        f"{grid.level} ({grid.read_size} px)"
    )
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
