"""Procedural noise fields used to build phantom textures (numpy + OpenCV, precomputed once)."""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """One octave of smooth value noise: a random grid upsampled bicubically.

    Args:
        rng: random source.
        shape: (height, width) of the field.
        cells: number of grid cells across the larger side.

    Returns:
        float32 field with roughly zero mean and unit spread.
    """
    h, w = shape
    side = max(h, w)
    gh = max(2, round(cells * h / side)) + 3
    gw = max(2, round(cells * w / side)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    # Resize a slightly larger grid and crop, so the border cells do not stretch.
    big = cv2.resize(grid, (w * gw // (gw - 3), h * gh // (gh - 3)), interpolation=cv2.INTER_CUBIC)
    oy = (big.shape[0] - h) // 2
    ox = (big.shape[1] - w) // 2
    return big[oy : oy + h, ox : ox + w]


def fbm(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cells: float,
    octaves: int = 5,
    persistence: float = 0.5,
) -> np.ndarray:
    """Fractal (multi-octave) value noise, normalised to zero mean and unit standard deviation.

    Octaves are summed at the lowest resolution that still holds the finest one (8 pixels per
    cell) and upsampled once, so low-frequency fields cost little even on large textures.
    """
    h, w = shape
    side = max(h, w)
    finest = min(cells * 2.0 ** (octaves - 1), side / 2.0)
    scale = min(1.0, finest * 8.0 / side)
    work = (max(8, round(h * scale)), max(8, round(w * scale)))
    total: np.ndarray = np.zeros(work, np.float32)
    amplitude = 1.0
    for _ in range(octaves):
        if cells > side / 2.0:
            break
        total += amplitude * value_noise(rng, work, cells)
        amplitude *= persistence
        cells *= 2.0
    if work != (h, w):
        total = cv2.resize(total, (w, h), interpolation=cv2.INTER_CUBIC)
    total -= total.mean()
    total /= total.std() + 1e-6
    return total


def ridges(
    rng: np.random.Generator, shape: tuple[int, int], cells: float, width: float
) -> np.ndarray:
    """Thin branching lines (0..1) where a noise field crosses zero: vessels, cracks, fibres."""
    field = fbm(rng, shape, cells, octaves=4, persistence=0.55)
    return np.clip(1.0 - np.abs(field) / width, 0.0, 1.0) ** 2


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1`` (float32)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def grid_coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates of a square texture: X and Y in [-1, 1], float32."""
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.meshgrid(axis, axis)


def ellipse_distance(
    x: np.ndarray,
    y: np.ndarray,
    centre: tuple[float, float],
    radii: tuple[float, float],
    angle: float = 0.0,
) -> np.ndarray:
    """Normalised elliptical distance (1 on the ellipse's rim) for rotated ellipses."""
    c, s = np.cos(angle), np.sin(angle)
    dx = x - centre[0]
    dy = y - centre[1]
    u = (c * dx + s * dy) / radii[0]
    v = (-s * dx + c * dy) / radii[1]
    return np.sqrt(u * u + v * v)


def blobs(
    rng: np.random.Generator,
    size: int,
    count: int,
    centre: tuple[float, float],
    spread: float,
    radius: tuple[float, float],
) -> np.ndarray:
    """Height field of overlapping dome-shaped lobules (fat, clots, tumour fragments), 0..1."""
    field = np.zeros((size, size), np.float32)
    for _ in range(count):
        cx = centre[0] + rng.normal(0.0, spread)
        cy = centre[1] + rng.normal(0.0, spread)
        r = rng.uniform(*radius)
        px, py, pr = (cx + 1) * size / 2, (cy + 1) * size / 2, r * size / 2
        x0, x1 = int(max(0, px - pr)), int(min(size, px + pr + 1))
        y0, y1 = int(max(0, py - pr)), int(min(size, py + pr + 1))
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d2 = ((xx - px) ** 2 + (yy - py) ** 2) / (pr * pr)
        dome = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        np.maximum(field[y0:y1, x0:x1], dome, out=field[y0:y1, x0:x1])
    return field
