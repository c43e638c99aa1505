"""The current step and its confidence, top left."""

from __future__ import annotations

import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import draw_bar, draw_text, fill_panel
from orstream.edge.overlay.layout import STARTING_TEXT, layout_for
from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.palette import (
    MUTED,
    PANEL,
    PANEL_OPACITY,
    STALE_TEXT,
    STARTING,
    TEXT,
    TRACK,
    step_colour,
)
from orstream.labels import OUT_OF_PATIENT

CAPTION = "STEP"


class StepAnnotator:
    """The step's readable name, its code and confidence, and a confidence bar in its colour.

    Before the first result it says the AI is starting rather than showing a step; a stale
    result is drawn in grey. Streams whose results carry no step get no panel.
    """

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        layout = layout_for(*image.shape[:2])
        style, panel = layout.style, layout.step
        result = context.result
        if result is not None and result.step is None:
            return
        fill_panel(image, panel.box, PANEL, PANEL_OPACITY)
        draw_text(image, CAPTION, style.caption, panel.text_x, panel.caption_top, MUTED)
        if result is None or result.step is None:
            draw_text(image, STARTING_TEXT, style.title, panel.text_x, panel.title_top, STARTING)
            return
        step = result.step
        if step.code != OUT_OF_PATIENT:
            code_x = panel.text_x + style.caption.size(CAPTION + " ")[0]
            draw_text(image, str(step.code), style.caption, code_x, panel.caption_top, MUTED)
        percent = f"{round(step.confidence * 100)}%"
        percent_x = panel.text_right - style.caption.size(percent)[0]
        draw_text(image, percent, style.caption, percent_x, panel.caption_top, MUTED)
        title_colour, bar_colour = (
            (STALE_TEXT, STALE_TEXT) if context.stale else (TEXT, step_colour(step.code))
        )
        name = display_name(step.name)
        draw_text(image, name, style.title, panel.text_x, panel.title_top, title_colour)
        draw_bar(image, panel.bar, step.confidence, bar_colour, TRACK)
