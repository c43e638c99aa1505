"""The slide phantom: slides OpenSlide opens as written, labels that agree with the masks and
pixels, and the same bytes from the same seed."""

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import openslide
import pytest
import tifffile
from slide_phantoms import PHANTOM_SIZE, PHANTOM_SLIDES

from orstream.cli import main
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.slides.phantom.slide_text import QUESTION_COLUMNS, fraction_bin
from orstream.slides.phantom.tissue_classes import SUBTYPES, TissueClass


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _mask(root: Path, slide: str) -> np.ndarray:
    return cv2.imread(str(root / "masks" / f"{slide}.png"), cv2.IMREAD_UNCHANGED)


def test_slides_open_in_openslide_as_pyramidal_jpeg_tiffs(slide_phantom: Path) -> None:
    paths = sorted((slide_phantom / "slides").glob("*.tiff"))
    assert [p.stem for p in paths] == [f"slide_{i:03d}" for i in range(1, PHANTOM_SLIDES + 1)]
    for path in paths:
        slide = openslide.OpenSlide(path)
        assert slide.level_dimensions == ((2560, 2560), (1280, 1280), (640, 640), (320, 320))
        assert slide.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        assert float(slide.properties["openslide.mpp-y"]) == pytest.approx(0.5)
        with tifffile.TiffFile(path) as tiff:
            assert len(tiff.pages) == 4
            for page in tiff.pages:
                assert page.compression == tifffile.COMPRESSION.JPEG
                assert (page.tilelength, page.tilewidth) == (512, 512)


def test_labels_captions_and_questions_agree_with_the_masks(slide_phantom: Path) -> None:
    labels = _rows(slide_phantom / "labels.csv")
    assert {row["subtype"] for row in labels[:3]} == set(SUBTYPES)
    questions = _rows(slide_phantom / "questions.csv")
    assert tuple(questions[0]) == QUESTION_COLUMNS
    assert [int(q["ID"]) for q in questions] == list(range(1, len(questions) + 1))
    captions = {row["slide"]: row["caption"] for row in _rows(slide_phantom / "captions.csv")}
    assert len(set(captions.values())) == len(captions)
    for row in labels:
        mask = _mask(slide_phantom, row["slide"])
        assert mask.shape == (PHANTOM_SIZE // int(row["mask_downsample"]),) * 2
        tissue = mask > 0
        fraction = float((mask == TissueClass.TUMOUR).sum() / tissue.sum())
        assert float(row["tumor_fraction"]) == pytest.approx(fraction, abs=1e-6)
        assert int(row["tumor"]) == (row["subtype"] != "none") == (fraction > 0)
        assert int(row["necrosis"]) == (mask == TissueClass.NECROSIS).any()
        assert f"{round(100 * fraction)}%" in captions[row["slide"]] or fraction == 0
        answers = {q["Question"]: q[q["Answer"]] for q in questions if q["Slide"] == row["slide"]}
        assert answers["Is tumour present in this slide?"] == ("yes" if fraction else "no")
        assert answers["About what share of the tissue is tumour?"] == fraction_bin(fraction)
        assert answers["Is necrosis present?"] == ("yes" if int(row["necrosis"]) else "no")
        counts = np.bincount(mask[tissue], minlength=len(TissueClass))
        main_class = TissueClass(int(np.argmax(counts)))
        assert answers["Which tissue covers most of the tissue area?"] == main_class.name.lower()


def test_pixels_follow_the_mask(slide_phantom: Path) -> None:
    # At the level whose pixels match the mask's: glass is bright, stroma is pink (eosin takes
    # green), and tumour, crowded with haematoxylin-stained nuclei, takes more red than stroma.
    for row in _rows(slide_phantom / "labels.csv"):
        mask = _mask(slide_phantom, row["slide"])
        slide = openslide.OpenSlide(slide_phantom / "slides" / f"{row['slide']}.tiff")
        level = slide.get_best_level_for_downsample(int(row["mask_downsample"]))
        image = np.asarray(slide.read_region((0, 0), level, slide.level_dimensions[level]))
        small = cv2.resize(image[..., :3], mask.shape[::-1], interpolation=cv2.INTER_AREA)
        colour = {c: small[mask == c].astype(float).mean(axis=0) for c in np.unique(mask)}
        assert colour[TissueClass.BACKGROUND].min() > 225
        assert colour[TissueClass.STROMA][1] < 200
        if row["tumor"] == "1":
            assert colour[TissueClass.TUMOUR][0] < colour[TissueClass.STROMA][0] - 5


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    write_slide_dataset(tmp_path / "a", 1, 5, 1024)
    write_slide_dataset(tmp_path / "b", 1, 5, 1024)
    write_slide_dataset(tmp_path / "c", 1, 6, 1024)
    first = _digests(tmp_path / "a")
    assert first == _digests(tmp_path / "b")
    other = _digests(tmp_path / "c")
    assert first["slides/slide_001.tiff"] != other["slides/slide_001.tiff"]
    assert first["masks/slide_001.png"] != other["masks/slide_001.png"]


def test_command_writes_slides_and_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "phantom"
    assert main(["slide", "phantom", "--out", str(out), "--slides", "1", "--size", "1024"]) == 0
    captured = capsys.readouterr()
    assert "wrote 1 phantom slide(s)" in captured.out
    assert "slide_001 (1/1): level 0" in captured.err
    assert main(["slide", "phantom", "--out", str(out), "--slides", "1", "--size", "1024"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["slide", "phantom", "--out", str(tmp_path / "x"), "--slides", "1", "--size", "64"])
    assert "--size must be at least 1024" in capsys.readouterr().err
