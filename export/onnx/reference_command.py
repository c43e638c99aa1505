"""``orstream export reference``: (re)write the golden reference of an existing model package.

The same writer ``orstream export onnx`` uses (:mod:`orstream.export.onnx.golden_reference`): one
phantom frame through every graph of the package in ONNX Runtime on CPU (fp32), saved as
``reference.npz`` with its sha256 in the card. A damaged or missing reference is replaced; every
other file of the package must still match its card.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--package", type=Path, required=True, help="model package folder (card.json + model.onnx)"
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.onnx.golden_reference import reference_frame, write_reference
    from orstream.package.loading import load_package

    package = load_package(args.package, check_reference=False)
    frame = reference_frame()
    package = write_reference(package, frame)
    digest = package.card.hashes.reference or ""
    print(f"reference {package.reference_path}  sha256 {digest[:12]}...")
    print(
        f"frame     phantom frame {frame.index} ({frame.image.shape[1]}x{frame.image.shape[0]}), "
        f"instrument {frame.instrument} in box {list(frame.box)}"
    )
    for graph in package.card.graphs:
        reference = package.reference(graph)
        assert reference is not None  # just written
        outputs = "  ".join(
            f"{name} {list(value.shape)} max|x| {float(abs(value).max()):.3g}"
            for name, value in reference.outputs.items()
            if not name.startswith("state_out.")
        )
        print(f"{graph:<9} {len(reference.inputs)} inputs -> {outputs}")
    return 0
