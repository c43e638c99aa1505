"""``orstream export trt``: a model package's ONNX to a TensorRT engine for this host.

The arguments, profiles and calibration frames are checked first, on any machine; building
needs TensorRT and a CUDA GPU (:mod:`orstream.export.tensorrt.build`), and without TensorRT the
command stops with one line saying so. ``--graph-only FILE`` needs neither: it writes the graph
TensorRT would be given (fp16 conversion, INT8 calibration and Q/DQ) after its golden check on
ONNX Runtime, to see what an engine's precision costs before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orstream.export.precision.calibration import DEFAULT_FRAMES

    parser.add_argument(
        "--package", type=Path, required=True, help="model package folder (card.json + model.onnx)"
    )
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--fp16",
        action="store_true",
        help="compute in fp16 (layers whose values come near fp16's range stay fp32)",
    )
    precision.add_argument(
        "--int8",
        action="store_true",
        help="INT8 convolutions and matrix products with ranges calibrated on --calib, the "
        "rest in fp16",
    )
    parser.add_argument(
        "--calib",
        metavar="SOURCE",
        help="frames for --int8: a video file, a PitVis-layout data set folder, a "
        "phantom://?seed=..&seconds=.. case, or a .npy of RGB uint8 frames [N, H, W, 3]; videos "
        "are sampled at the card's rate",
    )
    parser.add_argument(
        "--calib-frames",
        type=int,
        default=DEFAULT_FRAMES,
        metavar="N",
        help=f"most calibration frames taken (default {DEFAULT_FRAMES})",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME:MIN,OPT,MAX",
        help="shape range of one graph input, e.g. image:1x3x112x192,1x3x112x192,4x3x112x192 "
        "(repeat for more inputs; every input for a package with a dynamic batch; none: the "
        "card's shapes, with 1 to --max-batch rows for a dynamic batch)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help="for a package with a dynamic batch and no --profile: every input's profile spans "
        "1 to N rows, tuned for N (default: the card's max_batch)",
    )
    parser.add_argument(
        "--workspace",
        type=int,
        default=1024,
        metavar="MB",
        help="TensorRT workspace memory limit in MB (default 1024)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="build again even when engines/ holds a valid engine for this host and settings",
    )
    parser.add_argument(
        "--graph-only",
        type=Path,
        metavar="FILE",
        help="write the ONNX graph TensorRT would build from (after its golden check on ONNX "
        "Runtime) to FILE and stop; needs no TensorRT or GPU",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.edge.backends.tensorrt_engines import import_tensorrt
    from orstream.errors import OrstreamError
    from orstream.export.precision.calibration import check_source, read_calibration
    from orstream.export.tensorrt.build import build_engine
    from orstream.export.tensorrt.engine_graph import engine_graph
    from orstream.export.tensorrt.profiles import batch_profiles, parse_profiles
    from orstream.package.engine_manifest import Precision
    from orstream.package.loading import load_package

    package = load_package(args.package)
    card = package.card
    if args.max_batch is not None:
        if args.profile:
            raise OrstreamError("--max-batch sets every input's profile: give it or --profile")
        if args.max_batch < 1 or (args.max_batch > 1 and not card.dynamic_batch):
            takes = "1 to N rows" if card.dynamic_batch else "batch 1 only (no dynamic batch)"
            raise OrstreamError(f"--max-batch {args.max_batch}: {card.name} takes {takes}")
    profiles = parse_profiles(args.profile, card)
    if card.dynamic_batch and not profiles:
        profiles = batch_profiles(card, args.max_batch or card.max_batch)
    if args.workspace < 1:
        raise OrstreamError(f"--workspace must be at least 1 MB, not {args.workspace}")
    if args.int8 and args.calib is None:
        raise OrstreamError("--int8 needs calibration frames: --calib SOURCE")
    if args.calib is not None and not args.int8:
        raise OrstreamError("--calib is only used with --int8")
    if args.graph_only is not None and args.graph_only.suffix != ".onnx":
        raise OrstreamError(f"--graph-only {args.graph_only}: expected a .onnx file")
    if args.calib is not None:
        check_source(args.calib, args.calib_frames)
    if args.graph_only is None:
        import_tensorrt()  # before minutes of calibration frames, not after
    calibration = None
    if args.calib is not None:
        calibration = read_calibration(
            args.calib,
            package.card.clip.fps,
            args.calib_frames,
            progress=lambda line: _progress(f"calibration: {line}"),
        )
    precision: Precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"
    if args.graph_only is not None:
        import onnx

        graph = engine_graph(package, precision, calibration, progress=_progress)
        args.graph_only.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(graph.model, args.graph_only)
        print(f"graph     {args.graph_only}")
        print(f"check     {graph.describe()}")
        return 0
    built = build_engine(
        package,
        precision,
        profiles,
        workspace_mb=args.workspace,
        calibration=calibration,
        rebuild=args.rebuild,
        progress=_progress,
    )
    manifest = built.manifest
    print(f"engine    {built.plan} ({'already built, checked' if built.reused else 'built'})")
    if built.graph is not None:
        print(f"graph     {built.graph.describe()}")
    print(f"target    {manifest.key.describe_target()}, {precision}")
    print(f"manifest  {built.plan.with_suffix('.json')}  sha256 {manifest.engine_sha256[:12]}...")
    if calibration is not None:
        print(f"calibration {calibration.describe()}")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
