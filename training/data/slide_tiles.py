"""Tiles of phantom slides with their tissue class, read once through orstream's slide reading
and cached on disk.

Each slide of a phantom dataset (``orstream slide phantom``) is opened with OpenSlide, its tissue
found and its tile grid planned exactly as analysis does (:mod:`orstream.slides`); each tile's
class is the majority class of the region mask under it. Decoding JPEG tiles of a pyramidal TIFF
costs far more than a training step of a small encoder, so the tiles of a slide are written to
``<root>/cache/tiles-<mpp>-<tile>-<min_tissue>/<slide>.npz`` the first time and loaded from there
on every later epoch and run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.slides.phantom.tissue_classes import SUBTYPES
from orstream.slides.slide_file import open_slide
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_reader import read_tiles
from orstream.slides.tile_truth import majority_class
from orstream.slides.tissue_mask import detect_tissue


@dataclass(frozen=True)
class Tiling:
    """How tiles are cut: the target µm per pixel, the tile side and the least tissue share."""

    mpp: float = 1.0
    tile: int = 112
    min_tissue: float = 0.5

    @property
    def cache_name(self) -> str:
        return f"tiles-{self.mpp:g}-{self.tile}-{self.min_tissue:g}"


@dataclass(frozen=True)
class SlideLabel:
    """A phantom slide's labels (a row of ``labels.csv``)."""

    slide: str
    subtype: int  # index into SUBTYPES; 0 ("none") is no tumour
    tumor_fraction: float


@dataclass(frozen=True)
class SlideTiles:
    """One slide's tiles: ``pixels`` [N, tile, tile, 3] uint8, ``classes`` [N] (tissue class),
    ``corners`` [N, 2] level-0 (x, y)."""

    label: SlideLabel
    pixels: np.ndarray
    classes: np.ndarray
    corners: np.ndarray


def read_labels(root: Path) -> list[SlideLabel]:
    """The slides of the phantom dataset at ``root``, in file order.

    Raises:
        OrstreamError: ``root`` is not a phantom slide dataset.
    """
    labels_csv = root / "labels.csv"
    if not labels_csv.is_file():
        raise OrstreamError(f"{root}: no labels.csv (write slides with orstream slide phantom)")
    with labels_csv.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    try:
        return [
            SlideLabel(row["slide"], SUBTYPES.index(row["subtype"]), float(row["tumor_fraction"]))
            for row in rows
        ]
    except (KeyError, ValueError) as error:
        raise OrstreamError(f"{labels_csv}: not a phantom labels file ({error})") from None


def load_slide_tiles(root: Path, label: SlideLabel, tiling: Tiling) -> SlideTiles:
    """The tiles of ``label.slide`` under ``root``, from the cache when it holds them."""
    cache = root / "cache" / tiling.cache_name / f"{label.slide}.npz"
    if not cache.is_file():
        pixels, classes, corners = _read_tiles(root, label.slide, tiling)
        cache.parent.mkdir(parents=True, exist_ok=True)
        # A name of this process's own: DDP ranks that read the same slide at once each move
        # a whole file into place, and an interrupted run never leaves a truncated cache.
        partial = cache.with_suffix(f".{os.getpid()}.partial.npz")
        np.savez(partial, pixels=pixels, classes=classes, corners=corners)
        partial.replace(cache)
    with np.load(cache) as saved:
        return SlideTiles(label, saved["pixels"], saved["classes"], saved["corners"])


def _read_tiles(root: Path, slide: str, tiling: Tiling) -> tuple[np.ndarray, ...]:
    import cv2

    mask = cv2.imread(str(root / "masks" / f"{slide}.png"), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise OrstreamError(f"{root / 'masks' / slide}.png: region mask not found")
    with open_slide(root / "slides" / f"{slide}.tiff") as opened:
        grid = plan_tiles(opened, detect_tissue(opened), tiling.mpp, tiling.tile, tiling.min_tissue)
        scale = opened.dimensions[0] / mask.shape[1]  # level-0 pixels per mask pixel
        pixels = np.zeros((len(grid), tiling.tile, tiling.tile, 3), np.uint8)
        classes = np.zeros(len(grid), np.int64)
        for index, ((x, y), tile) in enumerate(read_tiles(opened, grid)):
            pixels[index] = tile
            classes[index] = majority_class(mask, x, y, grid.span, scale)
    return pixels, classes, grid.corners


def split_slides(labels: list[SlideLabel], val_every: int) -> tuple[list[SlideLabel], ...]:
    """(training, held out): every ``val_every``-th slide is held out. The phantom's subtypes
    take turns in threes, so with ``val_every`` 4 the held-out slides cover every subtype.

    Raises:
        OrstreamError: either part would be empty.
    """
    if val_every < 2:
        raise OrstreamError(f"val_every must be at least 2, not {val_every}")
    held = [label for index, label in enumerate(labels) if index % val_every == val_every - 1]
    kept = [label for label in labels if label not in held]
    if not held or not kept:
        raise OrstreamError(
            f"{len(labels)} slide(s) with val_every {val_every} leave no "
            f"{'held-out' if not held else 'training'} slide"
        )
    return kept, held
