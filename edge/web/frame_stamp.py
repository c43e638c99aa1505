"""A frame counter written into the picture as black and white blocks, so that a viewer can
tell from the decoded video alone which captured frame it shows: what glass-to-glass latency
is measured with (``orstream bench dashboard``; the edge stamps only when
``web.latency_stamps`` is set).

The code is two rows of ``COLUMNS`` square cells. Row 0 is black, white, then the counter's
``BITS`` bits, most significant first (white = 1); row 1 is white, black, then the same bits
inverted. The reference cells give the reader its threshold whatever the encoder did to the
levels, and the inverted row lets it refuse a read that compression blurred instead of
returning a wrong counter. Cells are read at their centre, away from the edges that the
encoder's blocks smear.

The blocks sit at the frame's left edge just above the overlay's timeline, where the overlay
draws nothing (its step panel and stale marker are at the top left, its HUD at the bottom right),
so they pass through the overlay unchanged. The browser's reader
(``static/frame_stamp_reader.js``) reads the same layout from the box it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orstream.edge.overlay.layout import layout_for

BITS = 16
"""Counter bits: the counter wraps after 65536 frames (45 min at 24 fps)."""
COLUMNS = BITS + 2
ROWS = 2
_BLACK, _WHITE = 0, 255


@dataclass(frozen=True)
class StampBox:
    """Where the code sits in a frame: its top-left corner and the side of one cell (pixels)."""

    x: int
    y: int
    cell: int

    @property
    def width(self) -> int:
        return COLUMNS * self.cell

    @property
    def height(self) -> int:
        return ROWS * self.cell

    def as_dict(self) -> dict[str, int]:
        """What the browser's reader is started with."""
        return {"x": self.x, "y": self.y, "cell": self.cell, "bits": BITS}


def stamp_box(height: int, width: int) -> StampBox:
    """The code's place in a ``height`` x ``width`` frame: cells of 1/45 of the height (16 px
    at 720p, at least 4), left margin, bottom at the overlay HUD's bottom.

    Raises:
        ValueError: the frame is too small to hold the code beside the overlay.
    """
    layout = layout_for(height, width)
    cell = max(4, height // 45)
    box = StampBox(layout.style.margin, layout.hud_bottom - ROWS * cell, cell)
    if box.y < layout.stale_top or box.x + box.width > width:
        raise ValueError(f"a {width}x{height} frame is too small for the frame counter's blocks")
    return box


def _bits(counter: int) -> list[bool]:
    return [bool(counter >> (BITS - 1 - bit) & 1) for bit in range(BITS)]


def write_stamp(image: Any, counter: int, box: StampBox) -> None:
    """Write ``counter`` (modulo ``2**BITS``) into ``image`` (HxWx3, numpy or torch) in place."""
    bits = _bits(counter % (1 << BITS))
    top = (False, True, *bits)
    cell = box.cell
    for column, white in enumerate(top):
        x = box.x + column * cell
        image[box.y : box.y + cell, x : x + cell] = _WHITE if white else _BLACK
        image[box.y + cell : box.y + 2 * cell, x : x + cell] = _BLACK if white else _WHITE


def read_stamp(image: np.ndarray, box: StampBox) -> int | None:
    """The counter in ``image`` (HxWx3 RGB), or None when the code does not read cleanly."""
    cell, inset = box.cell, box.cell // 4
    levels = np.empty((ROWS, COLUMNS))
    for row in range(ROWS):
        for column in range(COLUMNS):
            y, x = box.y + row * cell + inset, box.x + column * cell + inset
            levels[row, column] = image[y : y + cell - 2 * inset, x : x + cell - 2 * inset].mean()
    black = (levels[0, 0] + levels[1, 1]) / 2
    white = (levels[0, 1] + levels[1, 0]) / 2
    if white - black < 64:
        return None
    ones = levels > (black + white) / 2
    if not np.all(ones[0, 2:] != ones[1, 2:]):
        return None
    counter = 0
    for bit in ones[0, 2:]:
        counter = counter << 1 | int(bit)
    return counter
