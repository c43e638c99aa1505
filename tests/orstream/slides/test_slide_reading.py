"""Real slides open and tile; broken ones give one clear line naming the file."""

import subprocess
from pathlib import Path

import cv2
import pytest

from orstream.errors import OrstreamError
from orstream.slides.slide_file import open_slide
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_reader import read_batch, read_tiles
from orstream.slides.tissue_mask import detect_tissue


def test_a_real_aperio_slide_opens_and_tiles(shared_data: Path) -> None:
    with open_slide(shared_data / "wsi" / "cmu_small_region.svs") as slide:
        assert slide.vendor == "aperio"
        assert slide.dimensions == (2220, 2967)
        assert slide.mpp == (0.499, 0.499)
        tissue = detect_tissue(slide)
        assert 0.2 < tissue.fraction < 0.6
        grid = plan_tiles(slide, tissue, mpp=0.5, tile=224)
        assert 20 < len(grid) < 80
        _, pixels = next(read_tiles(slide, grid))
    # H&E tissue, not glass: darker than the white background.
    assert pixels.mean() < 220


def test_real_generic_and_tiny_slides_open_and_tile(shared_data: Path) -> None:
    with open_slide(shared_data / "wsi" / "boxes.tiff") as slide:
        assert slide.vendor == "generic-tiff"
        assert len(slide.levels) == 4
        tissue = detect_tissue(slide)
        grid = plan_tiles(slide, tissue, mpp=400, tile=32)
        assert len(grid) > 0
        assert all(p.shape == (32, 32, 3) for _, p in read_tiles(slide, grid))
    with open_slide(shared_data / "wsi" / "small.svs") as slide:
        assert slide.dimensions == (16, 16)
        assert len(plan_tiles(slide, detect_tissue(slide))) == 0


def test_a_target_finer_than_the_slide_is_refused(shared_data: Path) -> None:
    with (
        open_slide(shared_data / "wsi" / "boxes.tiff") as slide,
        pytest.raises(OrstreamError, match=r"boxes\.tiff: 0\.5 µm/px is finer"),
    ):
        plan_tiles(slide, detect_tissue(slide), mpp=0.5)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unopenable.tiff", "OpenSlide cannot open it: Unsupported TIFF compression: 52479"),
        ("unreadable.svs", "cannot read the slide's pixels: Bogus marker length"),
        ("missing.svs", "no such slide file"),
    ],
)
def test_a_bad_slide_is_one_clear_line(
    project_root: Path, shared_data: Path, name: str, message: str
) -> None:
    path = shared_data / "wsi" / name
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "slide", "tiles", "--slide", path],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == f"orstream: error: {path}: {message}\n"


def test_tiles_command_reports_and_draws_the_grid(
    project_root: Path, slide_phantom: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "grid.png"
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream", "slide", "tiles",
            "--slide", slide_phantom / "slides" / "slide_001.tiff", "--out", picture,
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[1:5] == [
        "level 0: 2560 x 2560 (downsample 1)",
        "level 1: 1280 x 1280 (downsample 2)",
        "level 2: 640 x 640 (downsample 4)",
        "level 3: 320 x 320 (downsample 8)",
    ]
    assert lines[5] == "mpp: 0.5 x 0.5 µm/px"
    assert lines[7].startswith("tiles: ") and lines[7].endswith("read at level 0 (224 px)")
    assert cv2.imread(str(picture)).shape == (512, 512, 3)


@pytest.mark.parametrize(("mpp", "tile"), [(0.5, 64), (0.7, 48)])  # read as is; resized
def test_tiles_read_in_strips_equal_openslide_reading_each_tile(
    slide_phantom: Path, mpp: float, tile: int
) -> None:
    import numpy as np
    import openslide

    path = slide_phantom / "slides" / "slide_001.tiff"
    with open_slide(path) as slide:
        grid = plan_tiles(slide, detect_tissue(slide), mpp=mpp, tile=tile)
        strips = read_batch(slide, grid, grid.corners)
    size = (grid.read_size, grid.read_size)
    neighbours = (np.diff(grid.corners[:, 0]) == grid.span).sum()
    assert len(grid) > 40 and neighbours > len(grid) / 2  # most tiles share a strip
    with openslide.OpenSlide(str(path)) as handle:
        for (x, y), pixels in zip(grid.corners, strips, strict=True):
            rgba = np.asarray(handle.read_region((int(x), int(y)), grid.level, size))
            assert rgba[..., 3].min() == 255
            alone = rgba[..., :3]
            if grid.read_size != tile:
                alone = cv2.resize(alone, (tile, tile), interpolation=cv2.INTER_AREA)
            assert np.array_equal(pixels, alone)
    assert (grid.read_size != tile) == (mpp == 0.7)


def test_unscanned_pixels_take_the_background_colour_and_scanned_ones_stay_exact(
    shared_data: Path,
) -> None:
    """A region over the slide's right edge: what lies beyond is transparent to OpenSlide and
    comes back as the slide's background colour; what lies inside is OpenSlide's pixels."""
    import numpy as np
    import openslide

    path = shared_data / "wsi" / "cmu_small_region.svs"
    with open_slide(path) as slide:
        width, height = slide.dimensions
        corner = (width - 40, height // 2)
        region = slide.read_region(corner, 0, (100, 30))
        background = slide.background
    with openslide.OpenSlide(str(path)) as handle:
        rgba = np.asarray(handle.read_region(corner, 0, (100, 30)))
    assert region.shape == (30, 100, 3) and region.dtype == np.uint8
    assert (rgba[:, :40, 3] == 255).all() and (rgba[:, 40:, 3] == 0).all()
    assert np.array_equal(region[:, :40], rgba[:, :40, :3])
    assert (region[:, 40:] == background).all()


def test_tissue_coverage_of_the_grid_is_each_squares_share_of_the_mask(
    slide_phantom: Path,
) -> None:
    import numpy as np

    with open_slide(slide_phantom / "slides" / "slide_002.tiff") as slide:
        tissue = detect_tissue(slide)
        width, height = slide.dimensions
    span = 700  # not a multiple of the thumbnail's scale: squares cut thumbnail pixels
    xs, ys = np.arange(0, width, span), np.arange(0, height, span)  # the last run off the edge
    shares = tissue.coverage(xs, ys, span)
    sx, sy = tissue.scale
    for row, y in enumerate(ys):
        for column, x in enumerate(xs):
            x0, y0 = int(x / sx), int(y / sy)
            x1, y1 = int(np.ceil((x + span) / sx)), int(np.ceil((y + span) / sy))
            window = tissue.mask[y0:y1, x0:x1]
            assert shares[row, column] == pytest.approx(window.mean(), abs=1e-12)
    assert 0 < (shares > 0.5).mean() < 1


def test_a_level_read_in_bands_is_the_level_read_at_once(slide_phantom: Path) -> None:
    import numpy as np

    with open_slide(slide_phantom / "slides" / "slide_001.tiff") as slide:
        banded = [
            level
            for level, info in enumerate(slide.levels)
            if info.downsample == round(info.downsample) and info.height >= 3 * 256
        ]
        assert banded, [level.downsample for level in slide.levels]
        for level in banded:
            whole = slide.read_level(level, bands=1)
            for bands in (2, 3):
                assert np.array_equal(slide.read_level(level, bands=bands), whole)
