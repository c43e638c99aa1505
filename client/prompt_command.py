"""``orstream client prompt``: masks for clicks, a box or class names on a recent frame.

The edge runtime keeps its streams' recent frames and their image embeddings; a prompt on one of
them runs the segmenter's prompt decoder there and sends back one mask per prompt: one for the
clicks and/or the box together, then one per ``--text`` class, in the order given.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.errors import OrstreamError
from orstream.results import SegmentMask
from orstream.segmentation.prompts import Prompt, PromptAnswer, PromptRequest

NEGATIVE = "neg"
POSITIVE = "pos"
PROMPTED_LABEL = "prompt"
"""What a mask from clicks or a box (no class) is called in the output and in file names."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Click:
    """A click in full-resolution frame pixels; ``positive`` is on the object."""

    x: float
    y: float
    positive: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client prompt``."""
    add_connection_arguments(parser)
    parser.add_argument(
        "--stream",
        default="",
        metavar="ID",
        help="the stream (may be left out when the runtime has one stream)",
    )
    frame = parser.add_mutually_exclusive_group()
    frame.add_argument(
        "--index",
        type=int,
        metavar="N",
        help="the frame with this index, while the runtime still keeps it (its last second or so)",
    )
    frame.add_argument(
        "--latest",
        action="store_true",
        help="the latest frame the runtime has segmented, else its latest frame (the default)",
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,neg]",
        help="a click in pixels of the full-resolution frame: X,Y on the object, X,Y,neg on the "
        "background next to it (repeat for several; the clicks and --box give one mask)",
    )
    parser.add_argument(
        "--box",
        metavar="X0,Y0,X1,Y1",
        help="a box around the object in pixels of the full-resolution frame, X1 and Y1 exclusive",
    )
    parser.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="CLASS",
        help="a class name of the segmenter, e.g. suction or sella: one mask per class "
        "(repeat for several)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        metavar="DIR",
        help="write each mask as a PNG (255 on the object, 0 elsewhere) named "
        "STREAM_INDEX_POSITION_CLASS.png into DIR",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the answer as one JSON object (masks with their run-length encoding)",
    )


def run(args: argparse.Namespace) -> int:
    """Check the prompt, send it, print the answer and save the masks when asked."""
    clicks = [parse_point(text) for text in args.point]
    box = None if args.box is None else parse_box(args.box)
    if not clicks and box is None and not args.text:
        raise OrstreamError("nothing to segment: give --point, --box or --text")
    from orstream.proto.convert import prompt_answer_from_proto, prompt_request_to_proto

    request = build_request(args.stream, args.index, clicks, box, args.text)
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        response = stub.Prompt(prompt_request_to_proto(request), timeout=args.timeout)
    answer = prompt_answer_from_proto(response)
    files = save_masks(answer, args.save) if args.save is not None else None
    if args.json:
        print(json.dumps(answer_record(answer, files)))
    else:
        print("\n".join(format_answer(answer, files)))
    return 0


def parse_point(text: str) -> Click:
    """``"120,80"`` (on the object) or ``"120,80,neg"`` (background).

    Raises:
        OrstreamError: the text is not of that form.
    """
    parts = [part.strip() for part in text.split(",")]
    polarity = parts.pop() if len(parts) == 3 else POSITIVE
    numbers = _numbers(parts, 2)
    if numbers is None or polarity.lower() not in (POSITIVE, NEGATIVE):
        raise OrstreamError(
            f"--point {text!r}: expected X,Y (a click on the object) or X,Y,{NEGATIVE} "
            "(a click on the background), in frame pixels"
        )
    return Click(numbers[0], numbers[1], polarity.lower() == POSITIVE)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"40,30,200,150"`` -> (x0, y0, x1, y1).

    Raises:
        OrstreamError: the text is not four numbers.
    """
    numbers = _numbers([part.strip() for part in text.split(",")], 4)
    if numbers is None:
        raise OrstreamError(f"--box {text!r}: expected X0,Y0,X1,Y1 in frame pixels")
    x0, y0, x1, y1 = numbers
    return x0, y0, x1, y1


def _numbers(parts: Sequence[str], count: int) -> list[float] | None:
    if len(parts) != count:
        return None
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def build_request(
    stream_id: str,
    index: int | None,
    clicks: Sequence[Click],
    box: tuple[float, float, float, float] | None,
    classes: Sequence[str],
) -> PromptRequest:
    """The request for a frame (``index``, or the latest when None): the clicks and the box
    give one mask, each class one more."""
    region = None
    if clicks or box is not None:
        region = Prompt(
            points=tuple((c.x, c.y) for c in clicks),
            point_labels=tuple(int(c.positive) for c in clicks),
            box=box,
        )
    return PromptRequest(stream_id, index, region, tuple(classes))


def mask_area(mask: SegmentMask) -> int:
    """Pixels on the object: the foreground runs, without decoding."""
    return sum(mask.mask.counts[1::2])


def mask_label(mask: SegmentMask) -> str:
    """The class name, or ``prompt`` for a mask from clicks or a box."""
    return mask.name or PROMPTED_LABEL


def mask_file_name(answer: PromptAnswer, position: int, mask: SegmentMask) -> str:
    """``cam0_000238_1_suction.png``: stream, frame index, position in the answer, class."""
    stream = _SAFE_NAME.sub("_", answer.stream_id) or "stream"
    label = _SAFE_NAME.sub("_", mask_label(mask))
    return f"{stream}_{answer.index:06d}_{position}_{label}.png"


def save_masks(answer: PromptAnswer, folder: Path) -> list[Path]:
    """Write each mask as a PNG into ``folder`` (created if missing); the paths, in order.

    Raises:
        OrstreamError: a file cannot be written.
    """
    import cv2
    import numpy as np

    from orstream.segmentation.mask_rle import decode_mask

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OrstreamError(f"--save {folder}: {error.strerror}") from None
    paths = []
    for position, mask in enumerate(answer.masks):
        path = folder / mask_file_name(answer, position, mask)
        pixels = decode_mask(mask.mask).astype(np.uint8) * 255
        if not cv2.imwrite(str(path), pixels):
            raise OrstreamError(f"--save: cannot write {path}")
        paths.append(path)
    return paths


def format_answer(answer: PromptAnswer, files: Sequence[Path] | None = None) -> list[str]:
    """A header (frame, model, latency) and one line per mask: class, score, area, box."""
    source = "embedding cached" if answer.embedding_cached else "encoder ran"
    lines = [
        f"{answer.stream_id} #{answer.index} pts {answer.pts_ns / 1e9:.3f} s | {answer.model} | "
        f"{answer.latency_ms:.1f} ms ({source}) | {len(answer.masks)} masks"
    ]
    width = max((len(mask_label(mask)) for mask in answer.masks), default=0)
    for position, mask in enumerate(answer.masks):
        area = mask_area(mask)
        box = ",".join(str(v) for v in mask.box) if area else "none"
        line = (
            f"  {mask_label(mask):<{width}}  score {mask.score:.2f}  area {area:>7} px  box {box}"
        )
        if files is not None:
            line += f"  -> {files[position]}"
        lines.append(line)
    return lines


def answer_record(answer: PromptAnswer, files: Sequence[Path] | None = None) -> dict[str, Any]:
    """The JSON object ``--json`` prints."""
    masks = []
    for position, mask in enumerate(answer.masks):
        record: dict[str, Any] = {
            "code": mask.code,
            "name": mask.name,
            "score": mask.score,
            "box": list(mask.box),
            "area": mask_area(mask),
            "mask": {
                "height": mask.mask.height,
                "width": mask.mask.width,
                "counts": list(mask.mask.counts),
            },
        }
        if files is not None:
            record["file"] = str(files[position])
        masks.append(record)
    return {
        "stream": answer.stream_id,
        "index": answer.index,
        "pts_ns": answer.pts_ns,
        "model": answer.model,
        "latency_ms": answer.latency_ms,
        "embedding_cached": answer.embedding_cached,
        "masks": masks,
    }
