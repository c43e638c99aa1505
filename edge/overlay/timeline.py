"""The steps so far as coloured segments along the bottom edge, one fixed colour per step."""

from __future__ import annotations

import numpy as np

from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.drawing import clip, draw_text, fill_panel
from orstream.edge.overlay.layout import Layout, layout_for
from orstream.edge.overlay.palette import (
    MUTED,
    PANEL,
    PANEL_OPACITY,
    STEP_COLOUR_TABLE,
    STEP_COLOURS,
    TRACK,
    readable_on,
)
from orstream.labels import OUT_OF_PATIENT, STEPS


def clock(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number_wide_segments(
    image: np.ndarray, layout: Layout, codes: np.ndarray, left: np.ndarray, right: np.ndarray
) -> None:
    """Write the step number into every segment (columns ``left..right``) with room for it."""
    style, bar = layout.style, layout.timeline.bar
    room = right - left - 2 * style.gap
    for index in np.flatnonzero(room >= style.caption.size("14")[0]):
        code = int(codes[index])
        if code not in STEPS:
            continue
        label = str(code)
        width, height = style.caption.size(label)
        x = round((left[index] + right[index] - width) / 2)
        top = (bar.y0 + bar.y1 - height) // 2
        draw_text(image, label, style.caption, x, top, readable_on(STEP_COLOURS[code]))


class TimelineAnnotator:
    """A bar spanning the stream from its first result to the drawn frame.

    Each segment runs until the next one starts (results come less often than frames); the time
    after the latest result stays dark, so a result falling behind shows as a growing dark tail.
    Segments wide enough carry their step number. The elapsed time sits at the bar's right end.
    """

    def annotate(self, image: np.ndarray, context: OverlayContext) -> None:
        segments = context.timeline
        if not segments:
            return
        layout = layout_for(*image.shape[:2])
        style, panel = layout.style, layout.timeline
        bar = clip(panel.bar, image)
        if bar.width <= 0 or bar.height <= 0:
            return
        fill_panel(image, panel.box, PANEL, PANEL_OPACITY)

        starts = np.fromiter((s.start_pts_ns for s in segments), np.int64, len(segments))
        codes = np.fromiter((s.code for s in segments), np.int64, len(segments))
        first, last_result = int(starts[0]), segments[-1].end_pts_ns
        span = max(last_result, context.frame_pts_ns) - first
        ns_per_px = max(span, 1) / bar.width
        # The time at the centre of every column of the bar, and the segment it falls in.
        times = first + (np.arange(bar.width) + 0.5) * ns_per_px
        which = np.searchsorted(starts, times, side="right") - 1
        known = np.isin(codes, list(STEP_COLOURS))
        rows = np.where(known, codes, OUT_OF_PATIENT)
        columns = STEP_COLOUR_TABLE[rows[which]]
        columns[times > last_result] = TRACK
        image[bar.y0 : bar.y1, bar.x0 : bar.x1] = columns[np.newaxis]

        ends = np.append(starts[1:], last_result)
        left = bar.x0 + (starts - first) / ns_per_px
        right = bar.x0 + (ends - first) / ns_per_px
        _number_wide_segments(image, layout, codes, left, right)
        text = clock(span / 1e9)
        text_x = panel.clock_right - style.caption.size(text)[0]
        draw_text(image, text, style.caption, text_x, panel.clock_top, MUTED)
