"""Rotary position embeddings (RoPE, Su et al.): each pair of channels of a query or key is
rotated by an angle proportional to its position, so the dot product of a query at ``m`` and a
key at ``n`` depends on ``m - n`` alone. Positions are absolute token indices, so a cached key
keeps its rotation and a decode step only rotates the new token."""

from __future__ import annotations

import torch
from torch import Tensor


def rotary_angles(positions: Tensor, dim: int, base: float = 10_000.0) -> tuple[Tensor, Tensor]:
    """(cos, sin) [T, dim] for integer ``positions`` [T]; ``dim`` is the head width (even)."""
    inverse = base ** (-torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim)
    angles = positions.to(torch.float32)[:, None] * inverse[None, :]
    doubled = torch.cat([angles, angles], dim=-1)
    return doubled.cos(), doubled.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` [..., T, dim] by the angles of its positions (the halves form the pairs)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin
