"""Markers that say the picture or the AI cannot be trusted right now: STALE and NO SIGNAL."""

from __future__ import annotations

import cv2
import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import Box, draw_text, fill_panel
from orstream.edge.overlay.layout import NO_SIGNAL_TEXT, layout_for
from orstream.edge.overlay.palette import DARK_TEXT, NO_SIGNAL, STALE, TEXT

MARKER_OPACITY = 0.9


class StaleMarker:
    """``AI STALE 1.2 s`` in amber under the step panel while the result is stale.

    The step and instrument panels grey their own text at the same time, so an old result never
    reads as the current one.
    """

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        if not context.stale:
            return
        layout = layout_for(*image.shape[:2])
        style = layout.style
        text = "AI STALE"
        if context.result is not None:
            text += f" {context.result_age_ms / 1000:.1f} s"
        width, height = style.title.size(text)
        box = Box(
            layout.stale_x,
            layout.stale_top,
            layout.stale_x + width + 2 * style.pad,
            layout.stale_top + height + 2 * style.pad,
        )
        fill_panel(image, box, STALE, MARKER_OPACITY)
        draw_text(image, text, style.title, box.x0 + style.pad, box.y0 + style.pad, DARK_TEXT)


class NoSignalMarker:
    """A red frame around the picture and NO SIGNAL in its centre while the source is silent.

    The one marker drawn in the middle: without a signal there is no field of view to keep clear.
    """

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        if not context.no_signal:
            return
        layout = layout_for(*image.shape[:2])
        style = layout.style
        height, width = image.shape[:2]
        border = style.gap
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), NO_SIGNAL, 2 * border)
        text_width, text_height = style.alert.size(NO_SIGNAL_TEXT)
        x, y = layout.centre
        pad = 2 * style.pad
        box = Box(
            x - text_width // 2 - pad,
            y - text_height // 2 - pad,
            x + (text_width + 1) // 2 + pad,
            y + (text_height + 1) // 2 + pad,
        )
        fill_panel(image, box, NO_SIGNAL, MARKER_OPACITY)
        draw_text(image, NO_SIGNAL_TEXT, style.alert, box.x0 + pad, box.y0 + pad, TEXT)
