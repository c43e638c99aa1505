"""One phantom slide's plan: its size, subtype, stain and the coarse fields its regions come
from.

Regions are decided on a coarse grid (one cell per ``mask_downsample`` level-0 pixels): a
tissue field (islands on glass), a tumour field (tumour above one threshold, necrosis above a
higher one) and a fat field. The region mask is the class at each cell's centre; the tile
renderer interpolates the same fields bilinearly, so region borders are smooth at full
resolution and agree with the mask wherever the mask is sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.slides.phantom.lattice import smooth_field
from orstream.slides.phantom.stain import Stain, draw_stain
from orstream.slides.phantom.tissue_classes import SUBTYPES, TissueClass

MASK_DOWNSAMPLE = 32
"""Level-0 pixels per region-mask pixel on each axis."""
MASK_BAND = 256
"""Rows of cells the region mask is computed from at a time."""

FIELD_NAMES = ("tissue", "tumour", "fat", "cos2", "sin2")
"""Channels of :attr:`SlidePlan.fields`: the three region fields and the stroma fibre
direction as (cos 2θ, sin 2θ), which interpolates without a jump at 180 degrees."""

NO_THRESHOLD = 1e9


@dataclass(frozen=True)
class SlidePlan:
    """Everything that fixes one phantom slide's pixels."""

    name: str
    width: int
    height: int
    mpp: float
    subtype: str
    seed: int
    stain: Stain
    fields: np.ndarray
    """(height / mask_downsample, width / mask_downsample, len(FIELD_NAMES)) float32."""
    tumour_threshold: float
    necrosis_threshold: float
    fat_threshold: float
    mask_downsample: int = MASK_DOWNSAMPLE

    def classes(self, fields: np.ndarray) -> np.ndarray:
        """The :class:`TissueClass` of each point of ``fields`` (..., channels) as uint8."""
        tissue, tumour, fat = fields[..., 0], fields[..., 1], fields[..., 2]
        scores = np.stack(
            [
                np.zeros_like(tumour),
                np.minimum(tumour - self.tumour_threshold, self.necrosis_threshold - tumour),
                tumour - self.necrosis_threshold,
                fat - self.fat_threshold,
            ],
            axis=-1,
        )
        inside = (np.argmax(scores, axis=-1) + TissueClass.STROMA).astype(np.uint8)
        return np.where(tissue > 0, inside, np.uint8(TissueClass.BACKGROUND))

    def region_mask(self) -> np.ndarray:
        """The region mask: one :class:`TissueClass` value per coarse cell (computed in bands
        of rows, so its scratch arrays stay small at any slide size)."""
        rows = len(self.fields)
        bands = [self.classes(self.fields[y : y + MASK_BAND]) for y in range(0, rows, MASK_BAND)]
        return np.concatenate(bands)


def plan_slide(name: str, size: int, mpp: float, subtype: str, seed: int) -> SlidePlan:
    """Draw a slide of ``size`` x ``size`` level-0 pixels: tissue islands, regions and stain."""
    if subtype not in SUBTYPES:
        raise ValueError(f"unknown subtype {subtype!r}")
    rng = np.random.default_rng(seed)
    cells = max(size // MASK_DOWNSAMPLE, 8)
    shape = (cells, cells)
    tissue = _tissue_field(rng, shape)
    inside = tissue > 0
    tumour = smooth_field(rng, shape, cells / 14)
    fat = smooth_field(rng, shape, cells / 20)
    angle = np.pi * (smooth_field(rng, shape, cells / 10) * 0.6 + rng.uniform(0, 1))
    tumour_threshold = necrosis_threshold = NO_THRESHOLD
    if subtype != "none":
        share = rng.uniform(0.1, 0.6)
        tumour_threshold = float(np.quantile(tumour[inside], 1 - share))
        if rng.uniform() < 0.6:
            necrosis_share = share * rng.uniform(0.1, 0.3)
            necrosis_threshold = float(np.quantile(tumour[inside], 1 - necrosis_share))
    fat_threshold = float(np.quantile(fat[inside], 1 - rng.uniform(0.0, 0.2)))
    # Filled channel by channel: stacking, then converting, held two more copies of it.
    fields = np.empty((*shape, 5), np.float32)
    for channel, values in enumerate((tissue, tumour, fat)):
        fields[..., channel] = values
    fields[..., 3] = np.cos(2 * angle)
    fields[..., 4] = np.sin(2 * angle)
    return SlidePlan(
        name=name,
        width=size,
        height=size,
        mpp=mpp,
        subtype=subtype,
        seed=int(rng.integers(2**31)),
        stain=draw_stain(rng),
        fields=fields,
        tumour_threshold=tumour_threshold,
        necrosis_threshold=necrosis_threshold,
        fat_threshold=fat_threshold,
    )


def _tissue_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Positive on tissue: one to three elliptical islands with ragged, noisy edges."""
    islands = [
        (*rng.uniform(0.3, 0.7, size=2), *rng.uniform(0.1, 0.2, size=2), rng.uniform(0, np.pi))
        for _ in range(int(rng.integers(1, 4)))
    ]
    xs = (np.arange(shape[1]) / shape[1])[None, :]
    envelope = np.empty(shape, np.float64)
    # In bands of rows: the float64 planes of each island stay small at any slide size.
    for y in range(0, shape[0], MASK_BAND):
        ys = (np.arange(y, min(y + MASK_BAND, shape[0])) / shape[0])[:, None]
        band = np.full((len(ys), shape[1]), -1.0, np.float32)
        for cy, cx, ry, rx, theta in islands:
            dy, dx = ys - cy, xs - cx
            u = (dx * np.cos(theta) + dy * np.sin(theta)) / rx
            v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ry
            band = np.maximum(band, 1 - (u**2 + v**2))
        envelope[y : y + len(ys)] = band
    ragged = smooth_field(rng, shape, shape[0] / 25)
    return (envelope + 0.12 * ragged).astype(np.float32)
