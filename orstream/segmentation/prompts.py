"""Prompts for the interactive segmenter and its answers, in orstream's own types.

The edge's segmenter takes a :class:`Prompt`; a client asks for masks on a recent frame of a
stream with a :class:`PromptRequest` and gets a :class:`PromptAnswer` back. They live in the core
because both ends of the ``Prompt`` RPC use them: ``orstream.proto.convert`` carries them over
gRPC, the edge answers them and the clients read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from orstream.results import SegmentMask

MAX_CLICKS = 32
"""Clicks one request may carry: far more than a person gives one object, and each costs the
decoder a token."""


@dataclass(frozen=True)
class Prompt:
    """What the user asks to segment; any combination of the fields, at least one set.

    Whether a prompt fits a frame and a model (points inside the frame, one 0/1 label per point,
    a known class name, ...) is the segmenter's to check, with a message for the user.

    Attributes:
        points: clicks (x, y) in frame pixels: the pixel clicked, 0 <= x < width.
        point_labels: one per point, 1 positive (part of the target), 0 negative (not).
        box: (x0, y0, x1, y1) in frame pixels, its left, top, right and bottom edges: pixels
            x0 <= x < x1 and y0 <= y < y1 are inside, so 0 <= x0 < x1 <= width.
        text: a class name of the segmenter.
        mask_logits: the previous round's low-resolution logits of the best mask, to refine.
    """

    points: tuple[tuple[float, float], ...] = ()
    point_labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    text: str | None = None
    mask_logits: np.ndarray | None = None


@dataclass(frozen=True)
class PromptRequest:
    """Masks asked for on one frame of a stream: one for the clicks and/or the box together,
    then one per class name, in order.

    Attributes:
        stream_id: the stream ("" when the runtime has exactly one).
        index: the frame's index, or None for the latest.
        region: clicks and/or a box (one mask), or None.
        classes: class names of the segmenter, one mask each.

    Raises:
        ValueError: ``region`` carries no click and no box, more than :data:`MAX_CLICKS`
            clicks, a class name or mask logits (which a request does not carry), or a click
            label that is not 0 or 1.
    """

    stream_id: str = ""
    index: int | None = None
    region: Prompt | None = None
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        region = self.region
        if region is None:
            return
        if not region.points and region.box is None:
            raise ValueError("a request's region needs clicks or a box")
        if len(region.points) > MAX_CLICKS:
            raise ValueError(
                f"a request takes at most {MAX_CLICKS} clicks, not {len(region.points)}"
            )
        if region.text is not None or region.mask_logits is not None:
            raise ValueError("a request's region holds clicks and a box only (classes go apart)")
        labels = region.point_labels
        if len(labels) != len(region.points) or any(label not in (0, 1) for label in labels):
            raise ValueError(
                f"a request's clicks need one label 0 or 1 each, got {labels} for "
                f"{len(region.points)} click(s)"
            )


@dataclass(frozen=True)
class PromptAnswer:
    """The masks of one request and the frame they belong to.

    Attributes:
        stream_id, index, pts_ns: the frame the masks belong to.
        masks: one per prompt, in request order.
        model: ``name@version`` of the segmenter.
        latency_ms: time spent answering (encoder included when it had to run).
        embedding_cached: the frame's embedding was already kept (only the decoder ran).

    Raises:
        ValueError: a negative frame index, or a latency that is negative or not a number.
    """

    stream_id: str
    index: int
    pts_ns: int
    masks: tuple[SegmentMask, ...]
    model: str
    latency_ms: float
    embedding_cached: bool

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"a frame index is 0 or more, got {self.index}")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms must be 0 or more, got {self.latency_ms}")
