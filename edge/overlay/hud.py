"""A small heads-up display of the video frame rate and the AI's latency, bottom right."""

from __future__ import annotations

import math

import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import Box, draw_text, fill_panel
from orstream.edge.overlay.layout import layout_for
from orstream.edge.overlay.palette import MUTED, PANEL, PANEL_OPACITY


def _known(value: float) -> bool:
    return math.isfinite(value) and value > 0


class HudAnnotator:
    """``24.0 fps  latency 85 ms``; ``--`` for a number not measured yet."""

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        layout = layout_for(*image.shape[:2])
        style = layout.style
        fps = f"{context.fps:.1f}" if _known(context.fps) else "--"
        latency = (
            f"{context.latency_ms:.0f}"
            if context.result is not None and _known(context.latency_ms)
            else "--"
        )
        text = f"{fps} fps  latency {latency} ms"
        width, height = style.caption.size(text)
        inner = style.gap
        box = Box(
            layout.hud_right - width - 2 * inner,
            layout.hud_bottom - height - 2 * inner,
            layout.hud_right,
            layout.hud_bottom,
        )
        fill_panel(image, box, PANEL, PANEL_OPACITY)
        draw_text(image, text, style.caption, box.x0 + inner, box.y0 + inner, MUTED)
