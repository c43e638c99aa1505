"""Renders one level-0 tile of a phantom slide: per-class stain amounts, then RGB.

Each class present in the tile is drawn over the whole tile and kept where the interpolated
region fields give that class: stroma as wavy eosin fibres with sparse spindle nuclei, tumour as
crowded round nuclei (in solid sheets, or ringing pale gland lumens for the glandular subtype),
necrosis as pale mottled eosin with nuclear debris, fat as empty cells with thin membranes, and
glass elsewhere. Sizes are in pixels at the slide's level-0 scale (about 0.5 µm per pixel).
"""

from __future__ import annotations

import numpy as np

from orstream.slides.phantom.lattice import sample_grid, value_noise
from orstream.slides.phantom.nuclei import CellShapes, cell_shapes, ellipse_density
from orstream.slides.phantom.slide_plan import SlidePlan
from orstream.slides.phantom.tissue_classes import TissueClass

STROMA_NUCLEI = CellShapes(cell=44, presence=0.35, radius=(8.0, 12.0), aspect=(0.25, 0.4))
TUMOUR_NUCLEI = (
    CellShapes(cell=30, presence=0.9, radius=(6.5, 9.5)),
    CellShapes(cell=30, presence=0.8, radius=(6.0, 9.0), shift=15),
)
GLAND_NUCLEI = CellShapes(cell=14, presence=1.0, radius=(4.0, 5.5))
GLANDS = CellShapes(cell=200, presence=0.9, radius=(45.0, 70.0), aspect=(0.7, 1.0))
DEBRIS = CellShapes(cell=14, presence=0.4, radius=(1.5, 3.5))
FAT_CELL = 72
GLAND_WALL = 18.0
GLASS_EOSIN = 0.012
"""The faint eosin tint of bare glass."""


def render_tile(plan: SlidePlan, x0: int, y0: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` RGB uint8 tile whose top-left level-0 pixel is (x0, y0)."""
    scale = plan.mask_downsample
    if _all_glass(plan, x0, y0, size):
        return _glass(plan, x0, y0, size)
    pixels = np.arange(size, dtype=np.float64) + 0.5
    fields = sample_grid(plan.fields, (y0 + pixels) / scale - 0.5, (x0 + pixels) / scale - 0.5)
    classes = plan.classes(fields)
    rng = np.random.default_rng((plan.seed, x0, y0))
    grain = rng.standard_normal((size, size), dtype=np.float32)
    haematoxylin = np.zeros((size, size), np.float32)
    eosin = np.full((size, size), GLASS_EOSIN, np.float32) + 0.004 * grain
    for tissue_class in np.unique(classes):
        if tissue_class == TissueClass.BACKGROUND:
            continue
        where = classes == tissue_class
        h, e = _DRAWERS[TissueClass(tissue_class)](plan, x0, y0, size, fields)
        haematoxylin[where] = h[where]
        eosin[where] = e[where] * (1 + 0.08 * grain[where])
    return plan.stain.to_rgb(haematoxylin, eosin)


def _all_glass(plan: SlidePlan, x0: int, y0: int, size: int) -> bool:
    """True when no field cell the tile interpolates from is tissue: most of a slide is glass,
    and this skips its texture."""
    scale = plan.mask_downsample
    first_y, first_x = max(y0 // scale - 1, 0), max(x0 // scale - 1, 0)
    last_y, last_x = (y0 + size) // scale + 2, (x0 + size) // scale + 2
    return bool((plan.fields[first_y:last_y, first_x:last_x, 0] <= 0).all())


def _glass(plan: SlidePlan, x0: int, y0: int, size: int) -> np.ndarray:
    """Bare glass: the slide's background colour with faint sensor noise."""
    rng = np.random.default_rng((plan.seed, x0, y0))
    colour = plan.stain.to_rgb(np.zeros(1, np.float32), np.full(1, GLASS_EOSIN, np.float32))
    noise = rng.integers(-2, 3, (size, size, 1), dtype=np.int16)
    return np.clip(colour[0].astype(np.int16) + noise, 0, 255).astype(np.uint8)


Amounts = tuple[np.ndarray, np.ndarray]


def _stroma(plan: SlidePlan, x0: int, y0: int, size: int, fields: np.ndarray) -> Amounts:
    direction = 0.5 * np.arctan2(fields[..., 4], fields[..., 3])
    xs = np.arange(x0, x0 + size, dtype=np.float32)[None, :]
    ys = np.arange(y0, y0 + size, dtype=np.float32)[:, None]
    across = xs * np.cos(direction) + ys * np.sin(direction)
    wobble = value_noise(x0, y0, size, 32, plan.seed + 1)
    fibres = 0.5 + 0.5 * np.sin(2 * np.pi * across / 24 + 8 * wobble)
    patchy = value_noise(x0, y0, size, 128, plan.seed + 2)
    eosin = 1.0 * (0.65 + 0.35 * fibres) * (0.8 + 0.4 * patchy)
    radius2, _ = cell_shapes(STROMA_NUCLEI, x0, y0, size, plan.seed + 3, direction + np.pi / 2)
    haematoxylin = 1.1 * ellipse_density(radius2)
    return haematoxylin, eosin


def _tumour(plan: SlidePlan, x0: int, y0: int, size: int, fields: np.ndarray) -> Amounts:
    chromatin = 0.7 + 0.3 * value_noise(x0, y0, size, 4, plan.seed + 4)
    cytoplasm = 0.6 * (0.8 + 0.4 * value_noise(x0, y0, size, 64, plan.seed + 5))
    if plan.subtype == "glandular":
        gland2, gland_distance = cell_shapes(GLANDS, x0, y0, size, plan.seed + 6)
        radius = gland_distance / np.sqrt(np.maximum(gland2, 1e-6)) + 1e-3
        lumen = gland2 < ((radius - GLAND_WALL) / radius) ** 2
        wall = (gland2 < 1) & ~lumen
        nuclei = ellipse_density(cell_shapes(GLAND_NUCLEI, x0, y0, size, plan.seed + 7)[0])
        haematoxylin = np.where(wall, 1.3 * nuclei * chromatin + 0.12, 0.1)
        eosin = np.where(lumen, 0.03, np.where(wall, cytoplasm, 0.6 * cytoplasm + 0.15))
        return haematoxylin, eosin
    nuclei = np.maximum(
        *(
            ellipse_density(cell_shapes(s, x0, y0, size, plan.seed + 8 + i)[0])
            for i, s in enumerate(TUMOUR_NUCLEI)
        )
    )
    return 1.3 * nuclei * chromatin + 0.12, cytoplasm


def _necrosis(plan: SlidePlan, x0: int, y0: int, size: int, fields: np.ndarray) -> Amounts:
    mottled = value_noise(x0, y0, size, 24, plan.seed + 10)
    debris = ellipse_density(cell_shapes(DEBRIS, x0, y0, size, plan.seed + 11)[0])
    return 0.15 + 0.9 * debris, 0.3 * (0.6 + 0.8 * mottled)


def _fat(plan: SlidePlan, x0: int, y0: int, size: int, fields: np.ndarray) -> Amounts:
    warp_x = 14 * value_noise(x0, y0, size, 64, plan.seed + 12)
    warp_y = 14 * value_noise(x0, y0, size, 64, plan.seed + 13)
    xs = np.arange(x0, x0 + size, dtype=np.float32)[None, :] + warp_x
    ys = np.arange(y0, y0 + size, dtype=np.float32)[:, None] + warp_y
    edge_x = np.abs((xs % FAT_CELL) - FAT_CELL / 2)
    edge_y = np.abs((ys % FAT_CELL) - FAT_CELL / 2)
    to_edge = FAT_CELL / 2 - np.maximum(edge_x, edge_y)
    membrane = np.exp(-((to_edge / 1.3) ** 2))
    return 0.05 * membrane, 0.08 + 0.6 * membrane


_DRAWERS = {
    TissueClass.STROMA: _stroma,
    TissueClass.TUMOUR: _tumour,
    TissueClass.NECROSIS: _necrosis,
    TissueClass.FAT: _fat,
}
