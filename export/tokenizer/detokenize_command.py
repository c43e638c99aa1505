"""``orstream detokenize``: a tokens file of ``orstream tokenize`` back to images.

The detokenizer rebuilds each entry at the encoder's input size; the image is then resized
(bilinear) to the source's size, so it lies over the original. An image's tokens give one PNG;
a video's give a folder of PNGs (named by source frame number) or an H.264 MP4 at the rate
the frames were taken at (an odd width or height loses its last pixel: H.264 needs even ones).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from orstream.export.tokenizer.runner import TokenizerRunner
    from orstream.export.tokenizer.tokens_file import Tokens

PROGRESS_EVERY = 100
"""Frames between progress lines on stderr."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--package",
        type=Path,
        required=True,
        help="the tokenizer package that made the tokens",
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="tokens file of orstream tokenize (.npz)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="an image's tokens: a .png file; a video's: a .mp4 file or a folder for PNGs",
    )


def progress(message: str) -> None:
    print(f"[detokenize] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from orstream.errors import OrstreamError
    from orstream.export.tokenizer.runner import TokenizerRunner
    from orstream.export.tokenizer.tokens_file import read_tokens
    from orstream.package.loading import load_package
    from orstream.streams.sources.video_file import H264Writer

    package = load_package(args.package)
    runner = TokenizerRunner(package)
    tokens = read_tokens(args.input, package)
    out: Path = args.out
    height, width = tokens.source_size
    if tokens.kind == "image":
        if out.suffix.lower() != ".png":
            raise OrstreamError(f"{out}: an image's tokens are written as a .png file")
        _write_png(out, next(decoded_frames(runner, tokens)))
        written = f"{out} ({width}x{height})"
    elif out.suffix.lower() == ".mp4":
        size = (height - height % 2, width - width % 2)
        with H264Writer(out, size[1], size[0], tokens.fps) as writer:
            for image in decoded_frames(runner, tokens):
                writer.write(np_crop(image, size))
        written = f"{out} ({len(tokens.indices)} frames, {size[1]}x{size[0]}, {tokens.fps:g} fps)"
    elif not out.suffix:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise OrstreamError(f"{out} exists and is not an empty folder")
        out.mkdir(parents=True, exist_ok=True)
        for number, image in zip(tokens.frames, decoded_frames(runner, tokens), strict=True):
            _write_png(out / f"frame_{int(number):06d}.png", image)
        written = f"{out}/frame_NNNNNN.png ({len(tokens.indices)} frames, {width}x{height})"
    else:
        raise OrstreamError(f"{out}: a video's tokens are written as a .mp4 file or a folder")
    print(f"images    {written} from {args.input} ({tokens.package} {tokens.version})")
    return 0


def decoded_frames(runner: TokenizerRunner, tokens: Tokens) -> Iterator[np.ndarray]:
    """Each entry's image, RGB uint8 at the source's size, a batch of entries per call."""
    import cv2

    from orstream.export.tokenizer.runner import to_pixels

    height, width = tokens.source_size
    total = len(tokens.indices)
    for start in range(0, total, runner.rows):
        for image in to_pixels(runner.decode(tokens.indices[start : start + runner.rows])):
            yield cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        done = min(start + runner.rows, total)
        if total > PROGRESS_EVERY and done // PROGRESS_EVERY > start // PROGRESS_EVERY:
            progress(f"{done}/{total} frames")


def np_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The top-left ``size`` (height, width) of ``image``, contiguous."""
    import numpy as np

    return np.ascontiguousarray(image[: size[0], : size[1]])


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    from orstream.errors import OrstreamError

    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OrstreamError(f"cannot write {path}")
