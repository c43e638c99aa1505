"""``orstream eval tokenizer``: a tokenizer package on held-out phantom frames: reconstruction
quality, codebook use and bits per pixel, with JPEG at the same bits beside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.export.evaluation.tokenizer import TokenizerReport

EPILOG = """\
frames: evenly spaced frames of every narrated clip of the held-out cases, centre-cropped to the
encoder's input size as training validated on them. psnr / ssim: the detokenizer's image of each
frame's tokens against the frame (0..1 pixels). codebook_usage: share of all codes chosen at
least once; perplexity: exp(entropy) of code frequencies per sub-codebook, averaged. bpp:
groups * h * w * log2(codes) / (H * W). jpeg_*: OpenCV JPEG of each frame at the largest size not
above the tokens' bits.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--package", type=Path, required=True, help="tokenizer package (orstream export onnx)"
    )
    parser.add_argument("--data", type=Path, required=True, help="phantom dataset root")
    parser.add_argument(
        "--videos", metavar="LIST", help="held-out cases, e.g. 9-10 (default: the card's val)"
    )
    parser.add_argument(
        "--frames-per-clip",
        type=int,
        metavar="N",
        help="frames from each narrated clip (default: as the card's training validated)",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from orstream.export.evaluation.tokenizer import evaluate_tokenizer
    from orstream.pitvis.layout import parse_videos

    report = evaluate_tokenizer(
        args.package,
        args.data,
        videos=parse_videos(args.videos) if args.videos else None,
        frames_per_clip=args.frames_per_clip,
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(format_report(report, args.package, args.data))
    return 0


def format_report(report: TokenizerReport, package: Path, data: Path) -> str:
    """The readable table of a report."""
    from orstream.export.evaluation.tokenizer import TARGET_PSNR

    verdict = "met" if report.psnr >= TARGET_PSNR else "not met"
    return "\n".join(
        [
            f"tokenizer: {package} on {data}",
            f"{report.frames} frames of held-out videos {report.videos}",
            "",
            f"{'':<12}{'PSNR dB':>9}{'SSIM':>8}{'bpp':>8}",
            f"{'tokens':<12}{report.psnr:>9.2f}{report.ssim:>8.3f}{report.bpp:>8.3f}",
            f"{'JPEG':<12}{report.jpeg_psnr:>9.2f}{report.jpeg_ssim:>8.3f}{report.jpeg_bpp:>8.3f}"
            f"   (mean quality {report.jpeg_quality:.1f})",
            "",
            f"codebook usage {report.codebook_usage:.3f}, perplexity {report.perplexity:.1f}",
            f"target PSNR {TARGET_PSNR:g} dB: {verdict}",
        ]
    )
