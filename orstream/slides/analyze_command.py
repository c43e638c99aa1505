"""``orstream wsi analyze``: one slide's class, tumour fraction and tumour heatmap.

Reads any slide OpenSlide opens, with a slide package (the shipped one by default): tissue,
tiles over it at the package's magnification, a progress bar over the tiles on stderr, and the
findings on stdout (one JSON object with ``--json``). ``--heatmap`` writes the tumour heatmap
over the slide's thumbnail as a PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orstream.slides.slide_analysis import DEFAULT_BATCH


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream wsi analyze``."""
    parser.add_argument("--slide", type=Path, required=True, help="any slide OpenSlide opens")
    parser.add_argument(
        "--package", type=Path, help="slide package (default: the one shipped with orstream)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--heatmap", type=Path, help="write the tumour heatmap here (PNG)")
    parser.add_argument(
        "--slide-mpp", type=float, help="the slide's level-0 µm per pixel, if it does not say"
    )
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help=f"tiles per encoder call ({DEFAULT_BATCH})"
    )
    parser.add_argument("--readers", type=int, help="tile reader threads (default: half the CPUs)")


def run(args: argparse.Namespace) -> int:
    """Analyse, report, and write the heatmap."""
    from orstream.errors import OrstreamError
    from orstream.progress_bar import ProgressBar
    from orstream.slides.heatmap_image import encode_png
    from orstream.slides.slide_analysis import analyze_slide
    from orstream.slides.slide_models import SlideModels

    if args.batch < 1:
        raise OrstreamError(f"--batch must be at least 1, not {args.batch}")
    models = SlideModels(args.package)
    bar: list[ProgressBar] = []

    def show(done: int, total: int) -> None:
        if not bar:
            bar.append(ProgressBar(total, "tiles"))
        bar[0].advance(done - bar[0].done)

    analysis = analyze_slide(
        args.slide, models, batch=args.batch, readers=args.readers,
        slide_mpp=args.slide_mpp, on_tiles=show,
    )  # fmt: skip
    if bar:
        bar[0].close()
    if args.heatmap is not None:
        try:
            args.heatmap.write_bytes(encode_png(analysis.heatmap()))
        except OSError as error:
            raise OrstreamError(f"{args.heatmap}: cannot write the PNG ({error})") from None
    report = analysis.report()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"slide: {args.slide} ({report['width']} x {report['height']} px)")
    print(f"tissue: {100 * report['tissue_fraction']:.1f}% of the slide, {report['tiles']} tiles")
    if analysis.outputs is None:
        print("outcome: no tissue tiles to analyse (blank or too small a slide)")
    else:
        chances = ", ".join(f"{n} {p:.2f}" for n, p in report["probabilities"].items())
        print(f"class: {report['class']} ({chances})")
        print(f"tumour fraction: {report['tumour_fraction']:.3f} of the tissue")
    print(f"time: {report['seconds']['total']:.1f} s")
    if args.heatmap is not None:
        print(f"wrote {args.heatmap}")
    return 0
