"""orstream phantom make: the PitVis layout, exact labels and masks, determinism, bad input."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from orstream.cli import main
from orstream.labels import ANATOMY, OUT_OF_PATIENT
from orstream.pitvis.csv_files import read_annotations
from orstream.streams.phantom.writer import PHANTOM_VERSION
from orstream.streams.sources.video_file import probe_video

SMALL = ["--width", "160", "--height", "90"]
SELLAR_STEPS = frozenset(range(4, 13))
"""Sphenoid sinus clearance to dural sealant: the steps that look at the sella."""


def make(out: Path, *extra: str) -> int:
    return main(["phantom", "make", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "set"
    assert make(out, "--cases", "2", "--seconds", "12", "--seed", "3", *SMALL) == 0
    return out


def png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_layout(dataset: Path) -> None:
    names = set(files(dataset))
    for video in ("01", "02"):
        assert {
            f"videos/video_{video}.mp4",
            f"annotations/annotations_{video}.csv",
            f"narrations/narrations_{video}.csv",
        } <= names
        assert {f"masks/video_{video}/{t:05d}.png" for t in range(12)} <= names
        assert {f"anatomy/video_{video}/{t:05d}.png" for t in range(12)} <= names
    assert {
        "map_steps.csv",
        "map_instruments.csv",
        "titles.csv",
        "phantom.json",
        "masks/README.md",
        "anatomy/README.md",
    } <= names


def test_videos_match_their_annotations(dataset: Path) -> None:
    for video in (1, 2):
        info = probe_video(dataset / "videos" / f"video_{video:02d}.mp4")
        assert (info.width, info.height, info.fps, info.frame_count) == (160, 90, 24.0, 12 * 24)
        assert (info.codec, info.pixel_format) == ("h264", "yuv420p")
        annotations = read_annotations(dataset / "annotations" / f"annotations_{video:02d}.csv")
        assert annotations.video == video
        assert annotations.time.tolist() == list(range(12))
        assert annotations.step[0] == OUT_OF_PATIENT and annotations.step[-1] == OUT_OF_PATIENT


def test_masks_hold_the_annotated_instruments(dataset: Path) -> None:
    threshold = max(4.0, 0.0005 * 0.5 * np.pi * (0.54 * 90) ** 2)
    instruments_seen = 0
    for video in (1, 2):
        annotations = read_annotations(dataset / "annotations" / f"annotations_{video:02d}.csv")
        for t, step, slots in zip(
            annotations.time, annotations.step, annotations.instruments, strict=True
        ):
            mask = png(dataset / "masks" / f"video_{video:02d}" / f"{t:05d}.png")
            assert mask.shape == (90, 160) and mask.dtype == np.uint8
            codes, counts = np.unique(mask[mask > 0], return_counts=True)
            big = {int(c) for c, n in zip(codes, counts, strict=True) if n >= threshold}
            labelled = {int(c) for c in slots if c > 0}
            assert labelled <= {int(c) for c in codes} and big <= labelled
            instruments_seen += len(labelled)
            if step == OUT_OF_PATIENT:
                assert tuple(slots) == (-1, -2) and not mask.any()
            elif not labelled:
                assert tuple(slots) == (0, -2)
    assert instruments_seen > 0


def test_anatomy_masks_show_the_sella_beside_the_instruments(dataset: Path) -> None:
    yy, xx = np.mgrid[0:90, 0:160]
    outside = np.hypot(xx + 0.5 - 80, yy + 0.5 - 45) > 0.54 * 90
    sellar_seconds = with_sella = 0
    for video in (1, 2):
        annotations = read_annotations(dataset / "annotations" / f"annotations_{video:02d}.csv")
        for t, step in zip(annotations.time, annotations.step, strict=True):
            name = f"video_{video:02d}/{t:05d}.png"
            anatomy = png(dataset / "anatomy" / name)
            mask = png(dataset / "masks" / name)
            assert anatomy.shape == (90, 160) and anatomy.dtype == np.uint8
            assert set(np.unique(anatomy).tolist()) <= {0, *ANATOMY}
            assert not anatomy[mask > 0].any() and not anatomy[outside].any()
            if step in SELLAR_STEPS:
                sellar_seconds += 1
                with_sella += bool(anatomy.any())
            else:
                assert not anatomy.any(), (video, t, step)
    assert sellar_seconds > 0 and with_sella > 0.7 * sellar_seconds
    assert "101 = sella" in (dataset / "anatomy" / "README.md").read_text()


def test_narrations_titles_and_parameters(dataset: Path) -> None:
    with (dataset / "narrations" / "narrations_01.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["int_video"], r["int_start"], r["int_end"]) for r in rows] == [
        ("1", "0", "10"),
        ("1", "10", "12"),
    ]
    assert all(len(r["text"]) > 20 for r in rows)
    with (dataset / "titles.csv").open() as f:
        titles = list(csv.DictReader(f))
    assert [t["int_video"] for t in titles] == ["1", "2"] and "02" in titles[1]["title"]
    meta = json.loads((dataset / "phantom.json").read_text())
    assert {k: meta[k] for k in ("seed", "difficulty", "width", "height", "fps", "cases")} == {
        "seed": 3,
        "difficulty": "normal",
        "width": 160,
        "height": 90,
        "fps": 24.0,
        "cases": 2,
    }
    assert meta["version"] == PHANTOM_VERSION


def test_same_seed_same_dataset(dataset: Path, tmp_path: Path) -> None:
    assert make(tmp_path / "again", "--cases", "2", "--seconds", "12", "--seed", "3", *SMALL) == 0
    assert files(tmp_path / "again") == files(dataset)


def test_first_video_numbers_new_cases(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "held_out"
    assert (
        make(out, "--cases", "1", "--seconds", "12", "--seed", "3", "--first-video", "7", *SMALL)
        == 0
    )
    assert read_annotations(out / "annotations" / "annotations_07.csv").video == 7
    assert not (out / "videos" / "video_01.mp4").exists()
    held_out = (out / "videos" / "video_07.mp4").read_bytes()
    assert held_out != (dataset / "videos" / "video_01.mp4").read_bytes()


def test_max_seconds_spreads_case_lengths(tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    arguments = ["--cases", "3", "--seconds", "2", "--max-seconds", "6", "--seed", "3"]
    assert make(out, *arguments, "--first-video", "4", *SMALL) == 0
    for video, seconds in ((4, 2), (5, 4), (6, 6)):
        info = probe_video(out / "videos" / f"video_{video:02d}.mp4")
        assert info.frame_count == seconds * 24
        annotations = read_annotations(out / "annotations" / f"annotations_{video:02d}.csv")
        assert annotations.time.tolist() == list(range(seconds))
        assert len(list((out / "masks" / f"video_{video:02d}").glob("*.png"))) == seconds
    meta = json.loads((out / "phantom.json").read_text())
    assert (meta["seed"], meta["max_seconds"], meta["case_seconds"]) == (3, 6, [2, 4, 6])


def test_defaults_are_720p_24fps_h264(tmp_path: Path) -> None:
    assert make(tmp_path / "hd", "--cases", "1", "--seconds", "1") == 0
    info = probe_video(tmp_path / "hd" / "videos" / "video_01.mp4")
    assert (info.width, info.height, info.fps, info.frame_count) == (1280, 720, 24.0, 24)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cases", "0", "--seconds", "2"], "--cases must be at least 1"),
        (["--cases", "1", "--seconds", "-5"], "--seconds must be at least 1"),
        (["--cases", "1", "--seconds", "0"], "--seconds must be at least 1"),
        (["--cases", "1", "--seconds", "2", "--width", "161"], "--width must be an even number"),
        (["--cases", "1", "--seconds", "2", "--fps", "0"], "--fps must be between"),
        (["--cases", "1", "--seconds", "2", "--seed", "-1"], "--seed must not be negative"),
        (["--cases", "1", "--seconds", "2", "--first-video", "0"], "--first-video must be"),
        (["--cases", "1", "--seconds", "2", "--jobs", "0"], "--jobs must be at least 1"),
        (["--cases", "2", "--seconds", "5", "--max-seconds", "4"], "--max-seconds must not be"),
    ],
)
def test_bad_values_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert make(tmp_path / "out", *SMALL, *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_refuses_a_non_empty_folder_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert make(out, "--cases", "1", "--seconds", "2", *SMALL) == 2
    assert "not empty" in capsys.readouterr().err
    assert make(out, "--cases", "1", "--seconds", "2", "--overwrite", *SMALL) == 0
    assert (out / "videos" / "video_01.mp4").exists() and (out / "notes.txt").exists()


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_unwritable_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "sub"
    assert make(out, "--cases", "1", "--seconds", "2", *SMALL) == 2
    err = capsys.readouterr().err
    assert str(out) in err and err.count("\n") == 1
