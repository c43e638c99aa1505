"""Sizes and fonts of the overlay for a frame height, so it reads the same at 720p and 1080p."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2

REFERENCE_HEIGHT = 720
"""The height the base sizes below are chosen for; other heights scale them linearly."""


@dataclass(frozen=True)
class Font:
    """A Hershey font at one size.

    Attributes:
        face: the ``cv2.FONT_HERSHEY_*`` face.
        scale: cv2 font scale.
        thickness: stroke thickness in pixels.
    """

    face: int
    scale: float
    thickness: int

    def size(self, text: str) -> tuple[int, int]:
        """Width and cap height of ``text`` in pixels (descenders hang below the height)."""
        return _text_size(text, self.face, self.scale, self.thickness)

    @property
    def height(self) -> int:
        """Cap height of the font: the distance from a line's top to its baseline."""
        return self.size("H")[1]

    @property
    def descent(self) -> int:
        """How far descenders (g, p, y) reach below the baseline."""
        return _descent(self.face, self.scale, self.thickness)


@lru_cache(maxsize=4096)
def _text_size(text: str, face: int, scale: float, thickness: int) -> tuple[int, int]:
    (width, height), _ = cv2.getTextSize(text, face, scale, thickness)
    return width, height


@lru_cache(maxsize=64)
def _descent(face: int, scale: float, thickness: int) -> int:
    _, baseline = cv2.getTextSize("gy", face, scale, thickness)
    return int(baseline)


@dataclass(frozen=True)
class Style:
    """Every size the annotators use, for one frame height.

    Attributes:
        unit: the frame height over :data:`REFERENCE_HEIGHT`.
        margin: distance from the frame's edges to the panels.
        pad: space between a panel's border and its content.
        gap: space between lines inside a panel and between neighbouring panels.
        bar: height of confidence and probability bars.
        timeline_bar: height of the timeline bar.
        title: font of the main line (the step's name, banners).
        body: font of list rows (instruments, markers).
        caption: font of captions and the HUD.
        alert: font of the full-attention NO SIGNAL marker.
    """

    unit: float
    margin: int
    pad: int
    gap: int
    bar: int
    timeline_bar: int
    title: Font
    body: Font
    caption: Font
    alert: Font


def _px(value: float) -> int:
    return max(1, round(value))


@lru_cache(maxsize=16)
def style_for(height: int) -> Style:
    """The overlay style for frames ``height`` pixels high."""
    unit = height / REFERENCE_HEIGHT
    return Style(
        unit=unit,
        margin=_px(14 * unit),
        pad=_px(10 * unit),
        gap=_px(7 * unit),
        bar=_px(5 * unit),
        timeline_bar=_px(16 * unit),
        title=Font(cv2.FONT_HERSHEY_DUPLEX, 0.8 * unit, _px(1.6 * unit)),
        body=Font(cv2.FONT_HERSHEY_DUPLEX, 0.58 * unit, _px(1.2 * unit)),
        caption=Font(cv2.FONT_HERSHEY_SIMPLEX, 0.48 * unit, _px(1.2 * unit)),
        alert=Font(cv2.FONT_HERSHEY_DUPLEX, 1.6 * unit, _px(3 * unit)),
    )
