"""Per-slide H&E stain: colours and strengths, as Beer-Lambert optical densities.

Real slides differ in stain from lab to lab and batch to batch; each phantom slide draws its
own haematoxylin and eosin colours, strengths and glass tint, so models must cope with the
variation instead of learning one colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.07, 0.99, 0.11])
"""Reference stain optical-density directions (Ruifrok and Johnston)."""


@dataclass(frozen=True)
class Stain:
    """Optical density per unit of stain, per RGB channel, and the glass's brightness."""

    haematoxylin: np.ndarray
    eosin: np.ndarray
    glass: np.ndarray

    def to_rgb(self, haematoxylin: np.ndarray, eosin: np.ndarray) -> np.ndarray:
        """RGB uint8 from per-pixel stain amounts (Beer-Lambert: light falls off exponentially
        with the optical density)."""
        density = haematoxylin[..., None] * self.haematoxylin + eosin[..., None] * self.eosin
        rgb = self.glass * np.exp(-density)
        return np.clip(rgb, 0, 255).astype(np.uint8)


def draw_stain(rng: np.random.Generator) -> Stain:
    """A stain with colour and strength varied around the reference H&E."""

    def direction(reference: np.ndarray) -> np.ndarray:
        varied = np.clip(reference + rng.normal(0, 0.07, 3), 0.02, None)
        return varied / np.linalg.norm(varied)

    return Stain(
        haematoxylin=(direction(HAEMATOXYLIN) * rng.uniform(0.8, 1.25)).astype(np.float32),
        eosin=(direction(EOSIN) * rng.uniform(0.6, 1.2)).astype(np.float32),
        glass=np.clip(rng.normal(242, 4, 3), 228, 252).astype(np.float32),
    )
