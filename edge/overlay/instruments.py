"""The instruments in view and their probabilities, top right."""

from __future__ import annotations

import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import Box, draw_bar, draw_text, fill_panel
from orstream.edge.overlay.layout import (
    INSTRUMENT_ROWS,
    INSTRUMENTS_CAPTION,
    NO_INSTRUMENT_TEXT,
    layout_for,
)
from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.palette import (
    ACCENT,
    MUTED,
    PANEL,
    PANEL_OPACITY,
    STALE_TEXT,
    TEXT,
    TRACK,
)


class InstrumentsAnnotator:
    """One row per instrument present (most probable first): name, probability and a bar.

    Args:
        max_rows: the most instruments listed; the caption counts the ones left out.
    """

    def __init__(self, max_rows: int = INSTRUMENT_ROWS) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, not {max_rows}")
        self.max_rows = max_rows

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        result = context.result
        if result is None or result.instruments is None:
            return
        layout = layout_for(*image.shape[:2])
        style, panel = layout.style, layout.instruments
        present = result.instruments.present[: self.max_rows]
        names = result.instruments.names[: self.max_rows]
        fill_panel(image, panel.box(max(len(present), 1)), PANEL, PANEL_OPACITY)
        text_x = panel.x0 + style.pad
        text_right = panel.x1 - style.pad
        caption = INSTRUMENTS_CAPTION
        left_out = len(result.instruments.present) - len(present)
        if left_out:
            caption += f" +{left_out}"
        draw_text(image, caption, style.caption, text_x, panel.caption_top, MUTED)
        if not present:
            draw_text(image, NO_INSTRUMENT_TEXT, style.body, text_x, panel.rows_top, MUTED)
            return
        text_colour, bar_colour = (STALE_TEXT, STALE_TEXT) if context.stale else (TEXT, ACCENT)
        for row, ((_, probability), name) in enumerate(zip(present, names, strict=True)):
            top = panel.rows_top + row * panel.row_height
            draw_text(image, display_name(name), style.body, text_x, top, text_colour)
            percent = f"{round(probability * 100)}%"
            percent_x = text_right - style.body.size(percent)[0]
            draw_text(image, percent, style.body, percent_x, top, text_colour)
            bar_top = top + panel.bar_offset
            bar = Box(text_x, bar_top, text_right, bar_top + style.bar)
            draw_bar(image, bar, probability, bar_colour, TRACK)
