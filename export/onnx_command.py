"""``orstream export onnx``: a trained checkpoint to a model package, with a parity report."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_PARITY_FRAMES = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="Lightning checkpoint written by `orstream train workflow`",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="package folder to write (model.onnx + card.json)"
    )
    parser.add_argument(
        "--parity-frames",
        type=int,
        default=DEFAULT_PARITY_FRAMES,
        metavar="N",
        help="frames per parity source, run one at a time with the state carried "
        f"(default {DEFAULT_PARITY_FRAMES})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing package at --out"
    )
    parser.add_argument(
        "--exporter",
        choices=("auto", "torchscript", "dynamo"),
        default="auto",
        help="torch.onnx exporter: auto tries torchscript, then dynamo",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.onnx_export import export_package

    result = export_package(
        args.checkpoint,
        args.out,
        parity_frames=args.parity_frames,
        overwrite=args.overwrite,
        exporter=args.exporter,
    )
    card = result.package.card
    print(f"package   {result.package.root}")
    print(
        f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
        f"{len(card.state)} state tensors  opset {card.export.opset} ({result.exporter})"
    )
    print(
        "parity    ONNX Runtime vs PyTorch, max abs diff per output "
        f"(tolerance {result.parity[0].tolerance:g}):"
    )
    state_outputs = {state.output for state in card.state}
    for parity in result.parity:
        heads = "  ".join(
            f"{name} {value:.2e}"
            for name, value in parity.max_abs_diff.items()
            if name not in state_outputs
        )
        state = max((parity.max_abs_diff[name] for name in state_outputs), default=0.0)
        print(f"  {parity.source:<8} {parity.frames:>3} frames  {heads}  state {state:.2e}")
    return 0
