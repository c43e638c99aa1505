"""Decoding a full-frame mask RLE only inside a window (the mask's box), for the overlay.

A 1080p mask has two million pixels, but an object covers a small part of them: decoding only
the runs that cross the window costs time in proportion to the object, not the frame.
"""

from __future__ import annotations

import numpy as np

from orstream.edge.overlay.drawing import Box
from orstream.segmentation.mask_rle import MaskRle


def clip_window(window: Box, height: int, width: int) -> Box:
    """``window`` cut to a ``height`` x ``width`` mask (possibly empty, never inverted)."""
    x0, x1 = min(max(window.x0, 0), width), min(max(window.x1, 0), width)
    y0, y1 = min(max(window.y0, 0), height), min(max(window.y1, 0), height)
    return Box(x0, y0, max(x1, x0), max(y1, y0))


def decode_window(rle: MaskRle, window: Box) -> np.ndarray:
    """The mask's pixels inside ``window`` as a ``bool`` array of the window's (clipped) size.

    Foreground outside the window is left out, so a window that is wrong for the mask gives
    what the mask has there, never an error.

    Args:
        rle: the full-frame mask.
        window: columns ``x0:x1`` and rows ``y0:y1`` of the mask; clipped to the mask's size.

    Returns:
        ``(y1 - y0, x1 - x0)`` of the clipped window; all False where the mask is empty.
    """
    width = rle.width
    x0, y0, x1, y1 = clip_window(window, rle.height, width)
    rows, cols = y1 - y0, x1 - x0
    counts = np.asarray(rle.counts, np.int64)
    if rows == 0 or cols == 0 or counts.size < 2:
        return np.zeros((rows, cols), bool)

    ends = np.cumsum(counts)
    # Foreground runs are the odd ones; [start, end) in row-major pixel numbers.
    starts, stops = (ends - counts)[1::2], ends[1::2]
    present = stops > starts
    starts, stops = starts[present], stops[present]
    # A run that wraps from one row to the next becomes one segment per row it touches.
    first_row, last_row = starts // width, (stops - 1) // width
    per_run = last_row - first_row + 1
    run = np.repeat(np.arange(starts.size), per_run)
    row = first_row[run] + np.arange(run.size) - np.repeat(np.cumsum(per_run) - per_run, per_run)
    begin = np.maximum(starts[run] - row * width, 0)
    end = np.minimum(stops[run] - row * width, width)

    # Cut the segments to the window, then renumber their pixels in the window's row-major
    # order: they stay sorted and disjoint, so they are the window's own foreground runs.
    begin, end = np.maximum(begin, x0), np.minimum(end, x1)
    inside = (row >= y0) & (row < y1) & (end > begin)
    local_row = row[inside] - y0
    bounds = np.empty(2 * int(inside.sum()) + 2, np.int64)
    bounds[0], bounds[-1] = 0, rows * cols
    bounds[1:-1:2] = local_row * cols + begin[inside] - x0
    bounds[2:-1:2] = local_row * cols + end[inside] - x0
    values = np.arange(bounds.size - 1) % 2 == 1
    return np.repeat(values, np.diff(bounds)).reshape(rows, cols)
