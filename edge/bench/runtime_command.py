"""``orstream bench runtime``: what the edge runtime costs, measured in one run.

On one H.264 file (by default a fresh 1280x720 phantom case) it measures, back to back:
decoding alone (``gst-launch-1.0 ... ! decodebin ! fakesink``), then the runtime flat out
(GStreamer source -> RGB -> overlay) with no model, with a null model (the model's
pre-processing and plumbing, zero compute), with the real model, and with the real model and
H.264 recording; each run's throughput is printed as a ratio of decode-only. A last run plays
the file at its own pace, as a live camera, with the model and recording: its per-stage
latencies, frame-to-result percentiles and per-stage drops are what a live feed sees.

With a segmenter package (the shipped one by default) it also times the segmenter's image
encoder and prompt decoder one call at a time on frames of the file, and repeats the live run
with live segmentation: the frame rate masks reach, and what they cost the video path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orstream.edge.demo.command import add_segmenter_arguments
from orstream.edge.models.shipped import SHIPPED_PACKAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream bench runtime``."""
    parser.add_argument("--source", type=Path, help="H.264 MP4 to play (default: a phantom case)")
    parser.add_argument(
        "--model", type=Path, default=SHIPPED_PACKAGE, help="workflow package (default: shipped)"
    )
    parser.add_argument("--seconds", type=int, default=60, help="phantom case length (default 60)")
    parser.add_argument("--width", type=int, default=1280, help="phantom width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="phantom height (default 720)")
    parser.add_argument(
        "--model-rate",
        type=float,
        help="frames per second to infer (default: the card's rate; a higher rate gives more "
        "frame-to-result samples)",
    )
    add_segmenter_arguments(parser, "leave the segmenter's runs out")
    parser.add_argument(
        "--segmentation-rate",
        type=float,
        help="frames per second to segment live (default: the card's rate)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the four measurements and print the report."""
    from orstream.edge.bench.runtime import bench_runtime

    bench_runtime(
        source=args.source,
        model=args.model,
        seconds=args.seconds,
        size=(args.width, args.height),
        model_rate=args.model_rate,
        json_path=args.json,
        segmenter=None if args.no_segmentation else args.segmenter,
        segmentation_rate=args.segmentation_rate,
        classifier=args.classifier,
    )
    return 0
