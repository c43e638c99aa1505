"""Seamless procedural randomness: hashed lattice values and bilinear sampling of coarse grids.

Every random value the tile renderer uses is a hash of global integer coordinates and the
slide's seed, never a draw from a per-tile generator, so neighbouring tiles agree at their
borders and any tile renders alone, in any order.
"""

from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFF)


def hash_uniform(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Uniform float32 values in [0, 1), one per (ix, iy) pair, fixed by ``seed``."""
    h = (ix.astype(np.int64).astype(np.uint64) * np.uint64(0x8DA6B343)) & _MASK
    h ^= (iy.astype(np.int64).astype(np.uint64) * np.uint64(0xD8163841)) & _MASK
    h ^= np.uint64(seed & 0xFFFFFFFF)
    # A murmur3-style finaliser spreads every input bit over the output.
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _MASK
    h ^= h >> np.uint64(16)
    return (h.astype(np.float64) / 4294967296.0).astype(np.float32)


def sample_grid(grid: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``grid`` (H, W) or (H, W, C) at the outer product of the fractional
    grid coordinates ``fy`` x ``fx`` (clamped at the edges): (len(fy), len(fx)[, C])."""
    height, width = grid.shape[:2]
    fy = np.clip(fy, 0, height - 1)
    fx = np.clip(fx, 0, width - 1)
    y0 = np.minimum(fy.astype(np.int64), height - 2) if height > 1 else np.zeros_like(fy, int)
    x0 = np.minimum(fx.astype(np.int64), width - 2) if width > 1 else np.zeros_like(fx, int)
    wy = (fy - y0).astype(np.float32)
    wx = (fx - x0).astype(np.float32)
    y1 = np.minimum(y0 + 1, height - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    extra = (slice(None),) + (None,) * (grid.ndim - 1)
    rows = grid[y0] * (1 - wy)[extra] + grid[y1] * wy[extra]
    extra_x = (None, slice(None)) + (None,) * (grid.ndim - 2)
    return rows[:, x0] * (1 - wx)[extra_x] + rows[:, x1] * wx[extra_x]


def value_noise(x0: int, y0: int, size: int, spacing: int, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) over the ``size`` x ``size`` pixels from (x0, y0): hashed values
    on a lattice ``spacing`` pixels apart, interpolated bilinearly."""
    first_x, first_y = x0 // spacing, y0 // spacing
    count = size // spacing + 2
    ix, iy = np.meshgrid(np.arange(first_x, first_x + count), np.arange(first_y, first_y + count))
    lattice = hash_uniform(ix, iy, seed)
    pixels = np.arange(size, dtype=np.float64)
    return sample_grid(
        lattice, (y0 + pixels) / spacing - first_y, (x0 + pixels) / spacing - first_x
    ).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A low-resolution Gaussian random field with zero mean and unit spread."""
    import cv2

    noise = rng.standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sigma, 0.5), borderType=cv2.BORDER_REFLECT)
    return (field - field.mean()) / max(float(field.std()), 1e-6)
