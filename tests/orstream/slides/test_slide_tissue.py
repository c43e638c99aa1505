"""The CLAM-style tissue mask finds the phantom's tissue; tiles lie on it; glass has none."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.slides.slide_file import open_slide
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_reader import read_tiles
from orstream.slides.tissue_mask import detect_tissue

# Measured on the fixture's slides: IoU 0.78-0.94 against all tissue, lower where a slide has
# much fat (pale, barely saturated: CLAM's rule misses it on real slides too), 0.91-0.96
# against tissue other than fat.
MIN_IOU = 0.7
MIN_IOU_WITHOUT_FAT = 0.85


def _truth(root: Path, slide: str, shape: tuple[int, int], classes: tuple[int, ...]) -> np.ndarray:
    mask = cv2.imread(str(root / "masks" / f"{slide}.png"), cv2.IMREAD_UNCHANGED)
    chosen = np.isin(mask, classes).astype(np.uint8)
    return cv2.resize(chosen, shape[::-1], interpolation=cv2.INTER_NEAREST) > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_tissue_mask_matches_the_phantom_mask(slide_phantom: Path) -> None:
    tissue_classes = tuple(c for c in TissueClass if c != TissueClass.BACKGROUND)
    for path in sorted((slide_phantom / "slides").glob("*.tiff")):
        with open_slide(path) as slide:
            found = detect_tissue(slide)
        assert found.thumbnail.shape[:2] == found.mask.shape == (512, 512)
        assert found.scale == (5.0, 5.0)
        truth = _truth(slide_phantom, path.stem, found.mask.shape, tissue_classes)
        assert _iou(found.mask, truth) > MIN_IOU
        no_fat = tuple(c for c in tissue_classes if c != TissueClass.FAT)
        lean = _truth(slide_phantom, path.stem, found.mask.shape, no_fat)
        assert _iou(found.mask, lean) > MIN_IOU_WITHOUT_FAT


def test_tiles_lie_on_tissue(slide_phantom: Path) -> None:
    for path in sorted((slide_phantom / "slides").glob("*.tiff")):
        mask = cv2.imread(str(slide_phantom / "masks" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
        with open_slide(path) as slide:
            grid = plan_tiles(slide, detect_tissue(slide), mpp=0.5, tile=224)
            assert len(grid) > 0
            tiles = list(read_tiles(slide, grid))
        assert [corner for corner, _ in tiles] == [tuple(c) for c in grid.corners]
        for (x, y), pixels in tiles:
            assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
            cells = mask[y // 32 : (y + 224) // 32 + 1, x // 32 : (x + 224) // 32 + 1]
            assert (cells != TissueClass.BACKGROUND).mean() >= 0.5


@pytest.mark.parametrize(
    ("mpp", "tile", "level", "read_size", "span"),
    [
        (0.5, 224, 0, 224, 224),
        (1.0, 224, 1, 224, 448),
        (0.75, 256, 0, 384, 384),
        (2.5, 64, 2, 80, 320),
    ],
)
def test_tiles_are_read_from_the_best_level(
    slide_phantom: Path, mpp: float, tile: int, level: int, read_size: int, span: int
) -> None:
    with open_slide(slide_phantom / "slides" / "slide_001.tiff") as slide:
        tissue = detect_tissue(slide)
        grid = plan_tiles(slide, tissue, mpp=mpp, tile=tile, min_tissue=0.0)
        assert (grid.level, grid.read_size, grid.span) == (level, read_size, span)
        assert len(grid) == (2560 // span) ** 2
        _, pixels = next(read_tiles(slide, grid))
    assert pixels.shape == (tile, tile, 3)


def test_a_blank_slide_has_no_tissue_and_no_tiles(tmp_path: Path) -> None:
    glass = np.full((1024, 1024, 3), 238, np.uint8)
    glass += np.random.default_rng(0).integers(0, 6, glass.shape, dtype=np.uint8)
    path = tmp_path / "blank.tiff"
    tifffile.imwrite(
        path, glass, tile=(256, 256), compression="jpeg", photometric="rgb",
        resolution=(2e4, 2e4), resolutionunit="CENTIMETER",
    )  # fmt: skip
    with open_slide(path) as slide:
        tissue = detect_tissue(slide)
        assert tissue.fraction == 0
        assert len(plan_tiles(slide, tissue)) == 0
