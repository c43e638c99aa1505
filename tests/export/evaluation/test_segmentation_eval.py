"""`orstream eval segmentation` on a tiny phantom dataset with a random segmenter package: the
report's keys and ranges, the protocol's parts, data without anatomy, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runs import run_cli
from segmenter_checkpoints import random_segmenter_package

from orstream.errors import OrstreamError
from orstream.export.evaluation.segmentation import ROUNDS, evaluate_segmentation
from orstream.segmentation.mask_scores import Score, mask_box, score_mask

SCORE_KEYS = {"dice", "iou"}


def _read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return np.asarray(image)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 4-second phantom cases at 320x180, with one suction and one sella target painted
    into the masks so that both kinds are present whatever the phantom shows."""
    root = tmp_path_factory.mktemp("segmentation_eval") / "phantom"
    code, _, err = run_cli(
        "phantom", "make", "--out", str(root), "--cases", "2", "--seconds", "4",
        "--width", "320", "--height", "180", "--fps", "6",
    )  # fmt: skip
    assert code == 0, err
    mask_path = root / "masks" / "video_01" / "00000.png"
    mask = _read_png(mask_path)
    mask[60:90, 100:140] = 16  # suction, 1200 pixels
    cv2.imwrite(str(mask_path), mask)
    anatomy_dir = root / "anatomy" / "video_01"
    anatomy_dir.mkdir(parents=True, exist_ok=True)
    anatomy_path = anatomy_dir / "00001.png"
    anatomy = _read_png(anatomy_path) if anatomy_path.is_file() else np.zeros((180, 320), np.uint8)
    cv2.circle(anatomy, (160, 100), 30, 101, thickness=-1)
    cv2.imwrite(str(anatomy_path), anatomy)
    for second in range(4):  # a dataset with anatomy/ has a PNG beside every mask
        path = anatomy_dir / f"{second:05d}.png"
        if not path.is_file():
            cv2.imwrite(str(path), np.zeros((180, 320), np.uint8))
    return root


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_segmenter_package(tmp_path_factory.getbasetemp())


def _check_score(score: object) -> None:
    assert isinstance(score, dict) and set(score) == SCORE_KEYS
    assert all(0.0 <= value <= 1.0 for value in score.values())


def test_json_report_has_the_protocols_keys_and_values_in_range(
    dataset: Path, package: Path
) -> None:
    code, out, err = run_cli(
        "eval", "segmentation", "--package", str(package), "--data", str(dataset), "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"images", "targets", "points", "box", "text", "rounds", "by_kind"}
    assert 2 <= report["images"] <= report["targets"]
    for prompt in ("points", "box", "text"):
        _check_score(report[prompt])
    assert set(report["rounds"]) == {"1", "3", "5"}
    for score in report["rounds"].values():
        _check_score(score)
    assert report["points"] == report["rounds"]["5"]
    assert set(report["by_kind"]) == {"instrument", "anatomy"}
    for prompts in report["by_kind"].values():
        assert set(prompts) == {"points", "box", "text"}
        for score in prompts.values():
            _check_score(score)
    assert "images" in err  # progress goes to stderr


def test_the_table_names_every_prompt_and_kind(dataset: Path, package: Path) -> None:
    code, out, _ = run_cli(
        "eval", "segmentation", "--package", str(package), "--data", str(dataset),
        "--max-images", "2",
    )  # fmt: skip
    assert code == 0
    assert "2 images" in out
    for row in ("points (5 clicks)", "after 1 click", "after 3 clicks", "box", "text"):
        assert row in out
    assert "instrument" in out and "anatomy" in out


def test_options_choose_the_images(dataset: Path, package: Path) -> None:
    every = evaluate_segmentation(package, dataset)
    assert evaluate_segmentation(package, dataset, max_images=1).images == 1
    sparse = evaluate_segmentation(package, dataset, every=3.0)
    assert 1 <= sparse.images < every.images
    assert every.targets == sum(every.targets_by_kind.values())
    assert every.targets_by_kind["instrument"] >= 1 and every.targets_by_kind["anatomy"] >= 1


def test_a_dataset_without_anatomy_scores_instruments_only(
    dataset: Path, package: Path, tmp_path: Path
) -> None:
    plain = Path(
        shutil.copytree(dataset, tmp_path / "plain", ignore=shutil.ignore_patterns("anatomy"))
    )
    report = evaluate_segmentation(package, plain)
    assert report.targets_by_kind["anatomy"] == 0
    assert report.by_kind["anatomy"] == {"points": None, "box": None, "text": None}
    assert all(score is not None for score in report.by_kind["instrument"].values())
    assert report.to_json()["by_kind"]["anatomy"]["box"] is None


def test_dice_and_iou_of_masks() -> None:
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True  # 16 pixels
    prediction = np.zeros_like(truth)
    prediction[4:8, 2:6] = True  # 16 pixels, 8 shared
    assert score_mask(prediction, truth) == Score(dice=0.5, iou=8 / 24)
    assert score_mask(truth, truth) == Score(1.0, 1.0)
    assert score_mask(np.zeros_like(truth), truth) == Score(0.0, 0.0)
    assert mask_box(prediction) == (2.0, 4.0, 6.0, 8.0)
    assert max(ROUNDS) == 5


def test_bad_input_is_one_line(dataset: Path, package: Path, random_workflow_package: Path) -> None:
    code, _, err = run_cli(
        "eval", "segmentation", "--package", str(random_workflow_package), "--data", str(dataset)
    )
    assert code == 2 and "has no prompt decoder" in err and err.count("\n") == 1
    code, _, err = run_cli(
        "eval", "segmentation", "--package", str(package), "--data", str(dataset / "absent")
    )
    assert code == 2 and "dataset root not found" in err
    with pytest.raises(OrstreamError, match="--every must be above 0"):
        evaluate_segmentation(package, dataset, every=0)
    with pytest.raises(OrstreamError, match="no targets"):
        empty = dataset.parent / "empty"
        shutil.copytree(dataset, empty, ignore=shutil.ignore_patterns("anatomy", "0000*.png"))
        evaluate_segmentation(package, empty)
