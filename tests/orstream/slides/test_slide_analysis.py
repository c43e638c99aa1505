"""orstream wsi analyze end to end with the shipped slide package: phantom and real slides,
the heatmap, tiles streamed in bounded batches, and every bad input as one clear outcome."""

import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from slide_phantoms import write_blank_slide

from orstream.slides.heatmap_image import tile_score_map
from orstream.slides.slide_analysis import analyze_slide
from orstream.slides.slide_file import open_slide
from orstream.slides.slide_models import SlideModels
from orstream.slides.tile_grid import plan_tiles
from orstream.slides.tile_reader import read_tiles
from orstream.slides.tile_stream import stream_batches
from orstream.slides.tissue_mask import detect_tissue


@pytest.fixture(scope="module")
def models() -> SlideModels:
    return SlideModels(threads=1)


def analyze(project_root: Path, *args: object) -> subprocess.CompletedProcess[str]:
    command = [project_root / ".venv/bin/orstream", "wsi", "analyze", *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_a_phantom_slide_is_classified_with_its_heatmap_and_progress(
    project_root: Path, slide_phantom: Path, tmp_path: Path
) -> None:
    slide = slide_phantom / "slides" / "slide_002.tiff"
    heatmap = tmp_path / "heat.png"
    result = analyze(project_root, "--slide", slide, "--json", "--heatmap", heatmap)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with open_slide(slide) as opened:
        grid = plan_tiles(opened, detect_tissue(opened), mpp=1.0, tile=112, min_tissue=0.5)
    assert report["outcome"] == "analysed" and report["tiles"] == len(grid) > 5
    assert report["class"] in ("none", "glandular", "solid")
    assert sum(report["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= report["tumour_fraction"] <= 1.0
    assert result.stderr.splitlines()[-1].startswith(f"tiles [{'#' * 30}] {len(grid)}/{len(grid)}")
    assert cv2.imread(str(heatmap)).shape == (512, 512, 3)


def test_the_heatmap_tints_exactly_the_tiles_by_their_tumour_score(
    slide_phantom: Path, models: SlideModels
) -> None:
    analysis = analyze_slide(slide_phantom / "slides" / "slide_003.tiff", models)
    assert analysis.outputs is not None
    scores = analysis.outputs.tile_tumour
    picture = analysis.heatmap().astype(int)
    thumbnail = analysis.tissue.thumbnail.astype(int)
    heat = tile_score_map(analysis.tissue, analysis.grid, scores)
    off_tiles = np.isnan(heat)
    assert (picture[off_tiles] == thumbnail[off_tiles]).all()
    assert (picture[~off_tiles] != thumbnail[~off_tiles]).any(axis=-1).mean() > 0.9
    hot, cold = heat == np.nanmax(heat), heat == np.nanmin(heat)
    if scores.max() - scores.min() > 0.5:  # a jet colour map: red for tumour, blue for none
        assert picture[hot][:, 0].mean() - picture[hot][:, 2].mean() > 40
        assert picture[cold][:, 2].mean() - picture[cold][:, 0].mean() > 40


def test_tiles_stream_in_grid_order_with_bounded_read_ahead(slide_phantom: Path) -> None:
    with open_slide(slide_phantom / "slides" / "slide_001.tiff") as slide:
        grid = plan_tiles(slide, detect_tissue(slide), mpp=0.5, tile=64)
        expected = np.stack([pixels for _, pixels in read_tiles(slide, grid)])
        reads = []
        original = slide.read_region

        def counted(*args: object) -> np.ndarray:
            reads.append(1)
            return original(*args)  # type: ignore[arg-type]

        slide.read_region = counted  # type: ignore[method-assign]
        batches = stream_batches(slide, grid, batch=4, readers=2, depth=3)
        first = next(batches)
        time.sleep(0.3)  # a consumer busy with the first batch: readers must not run ahead
        assert len(reads) <= 4 * (1 + 3)
        streamed = np.concatenate([first, *batches])
    assert len(grid) > 40
    assert np.array_equal(streamed, expected)


def test_a_real_aperio_slide_is_analysed(project_root: Path, shared_data: Path) -> None:
    result = analyze(project_root, "--slide", shared_data / "wsi" / "cmu_small_region.svs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("cmu_small_region.svs (2220 x 2967 px)")
    assert lines[1].startswith("tissue: ") and lines[1].endswith(" tiles")
    assert int(lines[1].split()[-2]) > 20
    assert lines[2].startswith("class: ")


def test_a_real_slide_coarser_than_the_tiles_is_one_line_until_its_scale_is_given(
    project_root: Path, shared_data: Path
) -> None:
    path = shared_data / "wsi" / "boxes.tiff"
    refused = analyze(project_root, "--slide", path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"orstream: error: {path}: 1.0 µm/px is finer than the slide's level 0 (352.778 µm/px)\n"
    )
    given = analyze(project_root, "--slide", path, "--slide-mpp", "0.5", "--json")
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["outcome"] in ("analysed", "no tissue")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unopenable.tiff", "OpenSlide cannot open it: Unsupported TIFF compression: 52479"),
        ("unreadable.svs", "cannot read the slide's pixels: Bogus marker length"),
    ],
)
def test_the_real_bad_slides_are_one_clear_line(
    project_root: Path, shared_data: Path, name: str, message: str
) -> None:
    path = shared_data / "wsi" / name
    result = analyze(project_root, "--slide", path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"orstream: error: {path}: {message}\n"


def test_a_non_slide_and_a_truncated_slide_are_one_clear_line(
    project_root: Path, slide_phantom: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.svs"
    notes.write_text("not a slide")
    result = analyze(project_root, "--slide", notes)
    assert result.returncode == 2
    assert result.stderr == f"orstream: error: {notes}: not a slide format OpenSlide reads\n"
    whole = (slide_phantom / "slides" / "slide_002.tiff").read_bytes()
    cut = tmp_path / "cut.tiff"
    cut.write_bytes(whole[: len(whole) // 2])
    result = analyze(project_root, "--slide", cut)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"orstream: error: {cut}: ")


def test_a_slide_without_tissue_has_a_clear_outcome(project_root: Path, tmp_path: Path) -> None:
    blank = write_blank_slide(tmp_path / "blank.tiff")
    heatmap = tmp_path / "blank.png"
    result = analyze(project_root, "--slide", blank, "--json", "--heatmap", heatmap)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "no tissue" and report["tiles"] == 0
    assert report["class"] is None and report["tumour_fraction"] == 0.0
    assert cv2.imread(str(heatmap)) is not None
    text = analyze(project_root, "--slide", blank)
    assert "outcome: no tissue tiles to analyse" in text.stdout
