"""Nuclei and gland lumens as ellipses on a jittered grid of cells.

Each cell of a grid holds at most one shape, placed and sized by hashes of the cell's global
coordinates, and small enough to stay inside its cell: a pixel then needs only its own cell,
which keeps rendering one pass of array arithmetic, and tiles agree at their borders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.slides.phantom.lattice import hash_uniform


@dataclass(frozen=True)
class CellShapes:
    """How shapes are scattered: grid pitch, chance a cell holds one, radii (pixels) and the
    short-to-long axis ratio."""

    cell: int
    presence: float
    radius: tuple[float, float]
    aspect: tuple[float, float] = (0.75, 1.0)
    shift: int = 0
    """Grid offset in pixels, so two grids of one pitch interleave."""


def cell_shapes(
    shapes: CellShapes,
    x0: int,
    y0: int,
    size: int,
    seed: int,
    angle: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For the ``size`` x ``size`` pixels from (x0, y0): each pixel's squared elliptical radius
    in its cell's shape (below 1 inside the shape, +inf where the cell is empty) and its distance
    in pixels from the shape's centre. ``angle`` (per pixel, radians) orients the long axes;
    without it each shape takes a random one."""
    cell = shapes.cell
    xs = np.arange(x0, x0 + size) + shapes.shift
    ys = np.arange(y0, y0 + size) + shapes.shift
    col, row = xs // cell, ys // cell
    cols = np.arange(col[0], col[-1] + 1)
    rows = np.arange(row[0], row[-1] + 1)
    grid_x, grid_y = np.meshgrid(cols, rows)

    def draw(k: int) -> np.ndarray:
        return hash_uniform(grid_x, grid_y, seed * 7 + k)[row - rows[0]][:, col - cols[0]]

    low, high = shapes.radius
    long_axis = low + (high - low) * draw(2)
    short_axis = long_axis * (shapes.aspect[0] + (shapes.aspect[1] - shapes.aspect[0]) * draw(3))
    margin = min(high / cell, 0.45)
    centre_x = (col * cell)[None, :] + cell * (margin + (1 - 2 * margin) * draw(0))
    centre_y = (row * cell)[:, None] + cell * (margin + (1 - 2 * margin) * draw(1))
    dx = xs[None, :] - centre_x
    dy = ys[:, None] - centre_y
    theta = np.pi * draw(4) if angle is None else angle
    cos, sin = np.cos(theta), np.sin(theta)
    along = dx * cos + dy * sin
    across = dy * cos - dx * sin
    radius2 = (along / long_axis) ** 2 + (across / short_axis) ** 2
    radius2 = np.where(draw(5) < shapes.presence, radius2, np.inf).astype(np.float32)
    return radius2, np.sqrt(dx * dx + dy * dy).astype(np.float32)


def ellipse_density(radius2: np.ndarray) -> np.ndarray:
    """A soft-edged filled ellipse from squared elliptical radii: 1 inside, fading to 0."""
    return np.clip(2.5 * (1 - radius2), 0, 1)
