"""Real slides open and tile; broken ones give one clear line naming the file."""

import subprocess
from pathlib import Path

import cv2
import pytest

from orstream.errors import OrstreamError
from orstream.slides.slide_file import open_slide
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_reader import read_tiles
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
