"""``orstream tokenize``: an image or a video's frames to a tokenizer package's tokens (.npz).

Each frame is resized to the encoder's input size as the card says (the aspect is not kept;
``orstream detokenize`` brings images back to the source's size) and encoded on ONNX Runtime
(CPU), several frames per call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from orstream.export.tokenizer.media import VideoPlan
    from orstream.export.tokenizer.runner import TokenizerRunner

PROGRESS_EVERY = 100
"""Frames between progress lines on stderr."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--package", type=Path, required=True, help="tokenizer package (orstream export onnx)"
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="an image (PNG, JPEG, ...) or a video file"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="tokens file to write (.npz, see detokenize)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        metavar="F",
        help="a video's frames at F per second, the nearest frame to each instant "
        "(default: every frame)",
    )


def progress(message: str) -> None:
    print(f"[tokenize] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from orstream.errors import OrstreamError
    from orstream.export.tokenizer.media import plan_video, read_image
    from orstream.export.tokenizer.runner import TokenizerRunner
    from orstream.export.tokenizer.tokens_file import Tokens, write_tokens
    from orstream.package.loading import load_package

    if args.out.suffix != ".npz":
        raise OrstreamError(f"{args.out}: a tokens file must end in .npz")
    package = load_package(args.package)
    runner = TokenizerRunner(package)
    image = read_image(args.input)
    frames: tuple[int, ...]
    if image is not None:
        indices = runner.encode([image])
        kind, size, frames, fps = "image", (image.shape[0], image.shape[1]), (0,), 0.0
    else:
        plan = plan_video(args.input, args.fps)
        indices = encode_video(runner, plan)
        kind, size, frames, fps = "video", plan.size, plan.frames, plan.fps
    tokens = Tokens(
        indices=indices,
        package=package.card.name,
        version=package.card.version,
        kind="image" if kind == "image" else "video",
        source_size=size,
        frames=np.array(frames, np.int64),
        fps=fps,
    )
    write_tokens(args.out, tokens, package)
    count, groups, height, width = indices.shape
    print(
        f"tokens    {args.out}: {count} {kind if count == 1 else 'frames'} of {size[1]}x{size[0]} "
        f"-> {groups} x {height} x {width} indices each, codes 0..{runner.spec.codes - 1} "
        f"({package.card.name} {package.card.version})"
    )
    return 0


def encode_video(runner: TokenizerRunner, plan: VideoPlan) -> np.ndarray:
    """The indices [N, G, h, w] of the planned frames, a batch of frames per call.

    Raises:
        OrstreamError: the video gave fewer frames than it promised.
    """
    import numpy as np

    from orstream.errors import OrstreamError

    parts: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    done = 0
    for frame in plan.read():
        batch.append(frame)
        if len(batch) == runner.rows:
            parts.append(runner.encode(batch))
            done, batch = done + len(batch), []
            if done // PROGRESS_EVERY > (done - runner.rows) // PROGRESS_EVERY:
                progress(f"{done}/{len(plan.frames)} frames")
    if batch:
        parts.append(runner.encode(batch))
    got = sum(len(part) for part in parts)
    if got != len(plan.frames):
        raise OrstreamError(f"{plan.path}: decoded {got} of its {len(plan.frames)} frames")
    return np.concatenate(parts)
