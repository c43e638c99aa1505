"""The OUT OF PATIENT banner, top centre."""

from __future__ import annotations

import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import draw_text, fill_panel
from orstream.edge.overlay.layout import OUT_OF_PATIENT_TEXT, layout_for
from orstream.edge.overlay.palette import OUT_OF_PATIENT_BANNER, PANEL, STALE_TEXT, TEXT
from orstream.labels import OUT_OF_PATIENT

BANNER_OPACITY = 0.85


class OutOfPatientBanner:
    """A solid banner while the step is out of patient (a dark one when the result is stale)."""

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        result = context.result
        if result is None or result.step is None or result.step.code != OUT_OF_PATIENT:
            return
        layout = layout_for(*image.shape[:2])
        style, box = layout.style, layout.banner
        fill, text = (PANEL, STALE_TEXT) if context.stale else (OUT_OF_PATIENT_BANNER, TEXT)
        fill_panel(image, box, fill, BANNER_OPACITY)
        width, height = style.title.size(OUT_OF_PATIENT_TEXT)
        x = (box.x0 + box.x1 - width) // 2
        top = (box.y0 + box.y1 - height) // 2
        draw_text(image, OUT_OF_PATIENT_TEXT, style.title, x, top, text)
