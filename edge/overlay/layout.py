"""Where each annotator draws on a frame of a given size.

Panels sit in the corners and along the edges, where the circular endoscopic field leaves the
frame dark, and keep their size whatever they show, so nothing jumps when the step changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from orstream.edge.overlay.drawing import Box
from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.style import Style, style_for
from orstream.labels import INSTRUMENTS, OUT_OF_PATIENT, STEPS
from orstream.results import step_name

STARTING_TEXT = "AI starting..."
NO_INSTRUMENT_TEXT = "None visible"
INSTRUMENTS_CAPTION = "INSTRUMENTS"
OUT_OF_PATIENT_TEXT = "OUT OF PATIENT"
NO_SIGNAL_TEXT = "NO SIGNAL"
WIDEST_PERCENT = "100%"
WIDEST_CLOCK = "00:00:00"
INSTRUMENT_ROWS = 3
"""The most instruments the instruments panel lists."""


@dataclass(frozen=True)
class StepPanel:
    """The current step, top left: a caption row, the step's name and a confidence bar."""

    box: Box
    text_x: int
    text_right: int
    caption_top: int
    title_top: int
    bar: Box


@dataclass(frozen=True)
class InstrumentsPanel:
    """The instruments present, top right: a caption, then one row (name, bar) per instrument."""

    x0: int
    x1: int
    top: int
    caption_top: int
    rows_top: int
    row_height: int
    bar_offset: int
    tail: int

    def box(self, rows: int) -> Box:
        """The panel's rectangle when it lists ``rows`` rows."""
        return Box(self.x0, self.top, self.x1, self.rows_top + rows * self.row_height + self.tail)


@dataclass(frozen=True)
class TimelinePanel:
    """The steps so far, along the bottom edge, with the elapsed time at its right end."""

    box: Box
    bar: Box
    clock_right: int
    clock_top: int


@dataclass(frozen=True)
class Layout:
    """Every annotator's place on a frame of one size.

    Attributes:
        style: sizes and fonts for the frame's height.
        step: the step panel.
        instruments: the instruments panel.
        banner: the out-of-patient banner, top centre.
        timeline: the timeline bar along the bottom.
        hud_right: right edge of the HUD (above the timeline, bottom right).
        hud_bottom: bottom edge of the HUD.
        stale_x: left edge of the stale marker (under the step panel it qualifies).
        stale_top: top of the stale marker.
        centre: the frame's centre (x, y), where NO SIGNAL goes.
    """

    style: Style
    step: StepPanel
    instruments: InstrumentsPanel
    banner: Box
    timeline: TimelinePanel
    hud_right: int
    hud_bottom: int
    stale_x: int
    stale_top: int
    centre: tuple[int, int]

    @property
    def panels(self) -> tuple[Box, ...]:
        """The panels' rectangles (the instruments panel at its tallest): mask labels keep out
        of them, so a tag never hides a step, a confidence or the timeline."""
        return (
            self.step.box,
            self.instruments.box(INSTRUMENT_ROWS),
            self.banner,
            self.timeline.box,
        )


def _step_panel(style: Style) -> StepPanel:
    titles = [display_name(step_name(code)) for code in (OUT_OF_PATIENT, *STEPS)] + [STARTING_TEXT]
    text_width = max(style.title.size(title)[0] for title in titles)
    x0 = y0 = style.margin
    text_x = x0 + style.pad
    caption_top = y0 + style.pad
    title_top = caption_top + style.caption.height + style.gap
    bar_top = title_top + style.title.height + style.title.descent
    bar = Box(text_x, bar_top, text_x + text_width, bar_top + style.bar)
    box = Box(x0, y0, bar.x1 + style.pad, bar.y1 + style.pad)
    return StepPanel(box, text_x, bar.x1, caption_top, title_top, bar)


def _instruments_panel(style: Style, width: int) -> InstrumentsPanel:
    names = [display_name(name) for name in INSTRUMENTS.values()] + [NO_INSTRUMENT_TEXT]
    text_width = max(style.body.size(name)[0] for name in names)
    text_width += style.gap + style.body.size(WIDEST_PERCENT)[0]
    text_width = max(text_width, style.caption.size(INSTRUMENTS_CAPTION)[0])
    x1 = width - style.margin
    top = style.margin
    caption_top = top + style.pad
    bar_offset = style.body.height + style.body.descent
    return InstrumentsPanel(
        x0=x1 - text_width - 2 * style.pad,
        x1=x1,
        top=top,
        caption_top=caption_top,
        rows_top=caption_top + style.caption.height + style.gap,
        row_height=bar_offset + style.bar + style.gap,
        bar_offset=bar_offset,
        tail=style.pad - style.gap,
    )


def _banner(style: Style, width: int) -> Box:
    text_width, text_height = style.title.size(OUT_OF_PATIENT_TEXT)
    half = text_width // 2 + 2 * style.pad
    centre = width // 2
    bottom = style.margin + text_height + 2 * style.pad
    return Box(centre - half, style.margin, centre + half, bottom)


def _timeline(style: Style, height: int, width: int) -> TimelinePanel:
    inner = style.gap
    box = Box(
        style.margin,
        height - style.margin - style.timeline_bar - 2 * inner,
        width - style.margin,
        height - style.margin,
    )
    clock_right = box.x1 - inner
    bar_right = clock_right - style.caption.size(WIDEST_CLOCK)[0] - style.gap
    bar = Box(box.x0 + inner, box.y0 + inner, bar_right, box.y1 - inner)
    clock_top = (bar.y0 + bar.y1 - style.caption.height) // 2
    return TimelinePanel(box, bar, clock_right, clock_top)


@lru_cache(maxsize=16)
def layout_for(height: int, width: int) -> Layout:
    """The layout of a ``height`` x ``width`` frame."""
    style = style_for(height)
    step = _step_panel(style)
    timeline = _timeline(style, height, width)
    return Layout(
        style=style,
        step=step,
        instruments=_instruments_panel(style, width),
        banner=_banner(style, width),
        timeline=timeline,
        hud_right=width - style.margin,
        hud_bottom=timeline.box.y0 - style.gap,
        stale_x=step.box.x0,
        stale_top=step.box.y1 + style.gap,
        centre=(width // 2, height // 2),
    )
