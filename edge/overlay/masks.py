"""Segmentation masks on the live video: a translucent fill, a solid outline and a label each.

Masks arrive at the segmenter's own rate, several video frames apart, so each segmentation
result is decoded once (only inside each mask's box) and kept while frames go by; drawing a
frame then blends only the boxes' pixels.

A stale segmentation result is not drawn at all. A mask claims "this object is exactly here";
once it is old the instrument or the camera has moved and the claim is wrong, and in the middle
of the operative field a misplaced outline, however faint, still draws the eye to the wrong
place. The step and instrument panels can grey out an old answer because it still reads as
"last known"; a mask cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import Box, draw_text, fill_panel
from orstream.edge.overlay.layout import layout_for
from orstream.edge.overlay.mask_window import clip_window, decode_window
from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.palette import (
    MASK_OPACITY,
    Colour,
    readable_on,
    segment_colour,
)
from orstream.edge.overlay.style import Style, style_for
from orstream.results import SegmentationResult, SegmentMask

PROMPTED_NAME = "Prompt"
"""The label of an object prompted by clicks or a box, which has no class name."""


def mask_label(mask: SegmentMask) -> str:
    """``"Suction 91%"``: the class's display name (or ``Prompt``) and the predicted IoU."""
    name = display_name(mask.name) if mask.name else PROMPTED_NAME
    return f"{name} {round(mask.score * 100)}%"


def outline_thickness(style: Style) -> int:
    """The outline's width in pixels: 2 at 720p, 3 at 1080p."""
    return max(1, round(2.4 * style.unit))


def _tag_pad(style: Style) -> int:
    return style.gap // 2 + 1


def label_box(text: str, box: Box, style: Style, width: int) -> Box:
    """Where a mask's label would go alone: a tag resting on the top-left corner of its box.

    The tag sits just above the box; when the box is too close to the top of the frame it goes
    just inside the box instead. It is shifted left to stay inside a frame ``width`` wide.
    """
    text_width, text_height = style.caption.size(text)
    pad = _tag_pad(style)
    tag_width = text_width + 2 * pad
    tag_height = text_height + style.caption.descent + 2 * pad
    x0 = min(max(box.x0, 0), max(width - tag_width, 0))
    y0 = box.y0 - tag_height if box.y0 >= tag_height else max(box.y0, 0)
    return Box(x0, y0, x0 + tag_width, y0 + tag_height)


def _overlaps(tag: Box, others: Sequence[Box]) -> bool:
    return any(tag.x0 < o.x1 and o.x0 < tag.x1 and tag.y0 < o.y1 and o.y0 < tag.y1 for o in others)


def place_labels(
    labels: Sequence[tuple[str, Box]],
    style: Style,
    height: int,
    width: int,
    keep_clear: Sequence[Box] = (),
) -> tuple[Box | None, ...]:
    """The tags of several masks' labels, given most confident first (None: no free place).

    Each tag goes to its :func:`label_box`; one that would cover a tag placed before it or a
    rectangle of ``keep_clear`` (the panels) moves down a tag's height at a time to the first
    free place in the frame, else up from where it was. A tag with no free place at all is left
    out: the mask's colour still shows, and no panel is ever hidden.
    """
    placed: list[Box] = []
    tags: list[Box | None] = []
    for text, box in labels:
        tag = label_box(text, box, style, width)
        found = None
        for step in (tag.height, -tag.height):
            candidate = tag
            while candidate.y0 >= 0 and candidate.y1 <= height:
                if not _overlaps(candidate, [*placed, *keep_clear]):
                    found = candidate
                    break
                candidate = Box(
                    candidate.x0, candidate.y0 + step, candidate.x1, candidate.y1 + step
                )
            if found is not None:
                break
        if found is not None:
            placed.append(found)
        tags.append(found)
    return tuple(tags)


@dataclass(frozen=True)
class PreparedMask:
    """One mask decoded for drawing on frames of one size.

    Attributes:
        box: the mask's box, clipped to the frame.
        inside: ``uint8`` (box height, box width), 1 on the object.
        tint: the class colour over the whole box, blended onto the object.
        contours: the object's outlines (holes included), in box coordinates.
        colour: the class colour.
        label: the label text.
    """

    box: Box
    inside: np.ndarray
    tint: np.ndarray
    contours: tuple[np.ndarray, ...]
    colour: Colour
    label: str


def prepare(mask: SegmentMask, height: int, width: int) -> PreparedMask | None:
    """Decode ``mask`` for frames ``height`` x ``width``; None when nothing of it would show.

    A mask of another size than the frame (drawn on a scaled display) is scaled to the frame.
    """
    rle = mask.mask
    if rle.height <= 0 or rle.width <= 0:
        return None
    window = clip_window(Box(*mask.box), rle.height, rle.width)
    pixels: np.ndarray = decode_window(rle, window).view(np.uint8)
    if (rle.height, rle.width) != (height, width):
        scale_x, scale_y = width / rle.width, height / rle.height
        window = Box(
            round(window.x0 * scale_x),
            round(window.y0 * scale_y),
            round(window.x1 * scale_x),
            round(window.y1 * scale_y),
        )
        if window.width <= 0 or window.height <= 0:
            return None
        size = (window.width, window.height)
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_NEAREST)
    if not pixels.any():
        return None
    contours, _ = cv2.findContours(pixels, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    colour = segment_colour(mask.code)
    # One row of the colour copied down: numpy fills from a tuple pixel by pixel, far slower.
    row = np.empty((pixels.shape[1], 3), np.uint8)
    row[:] = colour
    tint = np.ascontiguousarray(np.broadcast_to(row, (*pixels.shape, 3)))
    return PreparedMask(window, pixels, tint, tuple(contours), colour, mask_label(mask))


@dataclass(frozen=True)
class _Decoded:
    """A segmentation result made ready for frames of one size: its masks and label tags."""

    segmentation: SegmentationResult
    height: int
    width: int
    masks: tuple[PreparedMask, ...]
    tags: tuple[Box | None, ...]


class MasksAnnotator:
    """Draws the latest segmentation result's masks, unless it is stale: fills first, then the
    outlines, then the labels, each with the most confident mask on top.

    Args:
        opacity: the fill's opacity.
    """

    def __init__(self, opacity: float = MASK_OPACITY) -> None:
        if not 0.0 < opacity <= 1.0:
            raise ValueError(f"opacity must be in (0, 1], not {opacity}")
        self.opacity = opacity
        # The overlay of one stream draws on one thread, and a segmentation result stays the
        # latest for several frames: keep the last one decoded.
        self._decoded: _Decoded | None = None

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        result = context.segmentation
        if result is None or result.segmentation is None or context.segmentation_stale:
            return
        height, width = image.shape[:2]
        decoded = self._decode(result.segmentation, height, width)
        style = style_for(height)
        thickness = outline_thickness(style)
        # Results list the most confident mask first; drawing it last puts it on top.
        for mask in reversed(decoded.masks):
            self._fill(image, mask)
        for mask in reversed(decoded.masks):
            roi = image[mask.box.y0 : mask.box.y1, mask.box.x0 : mask.box.x1]
            cv2.drawContours(roi, mask.contours, -1, mask.colour, thickness, cv2.LINE_8)
        pad = _tag_pad(style)
        for mask, tag in zip(reversed(decoded.masks), reversed(decoded.tags), strict=True):
            if tag is None:
                continue
            fill_panel(image, tag, mask.colour, 1.0)
            text = readable_on(mask.colour)
            draw_text(image, mask.label, style.caption, tag.x0 + pad, tag.y0 + pad, text)

    def _decode(self, segmentation: SegmentationResult, height: int, width: int) -> _Decoded:
        decoded = self._decoded
        if (
            decoded is not None
            and decoded.segmentation is segmentation
            and (decoded.height, decoded.width) == (height, width)
        ):
            return decoded
        masks = tuple(
            mask
            for mask in (prepare(m, height, width) for m in segmentation.masks)
            if mask is not None
        )
        style = style_for(height)
        panels = layout_for(height, width).panels
        tags = place_labels([(m.label, m.box) for m in masks], style, height, width, panels)
        self._decoded = _Decoded(segmentation, height, width, masks, tags)
        return self._decoded

    def _fill(self, image: np.ndarray, mask: PreparedMask) -> None:
        box = mask.box
        roi = image[box.y0 : box.y1, box.x0 : box.x1]
        blended = cv2.addWeighted(roi, 1.0 - self.opacity, mask.tint, self.opacity, 0.0)
        cv2.copyTo(blended, mask.inside, roi)
