"""orstream eval wsi scores a slide package on phantom slides against their exact labels and
masks, and orstream bench wsi reports its measurements."""

import json
import subprocess
from pathlib import Path

import pytest

from orstream.errors import OrstreamError
from orstream.slides.slide_evaluation import SlideScores, read_phantom_labels


def test_eval_wsi_scores_every_slide_of_a_tiny_set(project_root: Path, slide_phantom: Path) -> None:
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "eval", "wsi", "--data", slide_phantom, "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    rows = summary["per_slide"]
    labels = read_phantom_labels(slide_phantom)
    assert [row["slide"] for row in rows] == [label.slide for label in labels]
    assert [row["true_fraction"] for row in rows] == [label.fraction for label in labels]
    right = [row["predicted"] == row["subtype"] for row in rows]
    assert summary["accuracy"] == pytest.approx(sum(right) / len(rows), abs=1e-4)
    errors = [abs(row["fraction"] - row["true_fraction"]) for row in rows]
    assert summary["fraction_mae"] == pytest.approx(sum(errors) / len(rows), abs=2e-4)
    assert 0.0 <= summary["heatmap_dice"] <= 1.0
    assert summary["tiles"] == sum(row["tiles"] for row in rows) > 0
    assert len(result.stderr.splitlines()) >= len(rows)


def test_heatmap_dice_pools_tiles_over_slides() -> None:
    scores = SlideScores(called_and_true=6, called=8, true=10)
    scores.slides = [
        {"correct": True, "fraction": 0.3, "true_fraction": 0.2, "tiles": 30},
        {"correct": False, "fraction": 0.0, "true_fraction": 0.0, "tiles": 20},
    ]
    summary = scores.summary()
    assert summary["heatmap_dice"] == pytest.approx(12 / 18, abs=1e-4)
    assert summary["accuracy"] == 0.5 and summary["fraction_mae"] == pytest.approx(0.05)
    assert SlideScores(slides=scores.slides).summary()["heatmap_dice"] == 1.0


def test_a_folder_without_phantom_labels_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match=r"no labels\.csv"):
        read_phantom_labels(tmp_path)


def test_bench_wsi_compares_analysis_with_reading_alone(
    project_root: Path, slide_phantom: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "bench.json"
    slide = slide_phantom / "slides" / "slide_001.tiff"
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream", "bench", "wsi", "--slide", slide,
            "--rounds", "1", "--memory-slide", slide, "--json", report_path,
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    speed, memory = report["speed"], report["memory"]
    assert speed["tiles"] > 0 and speed["read_ms_per_tile"]["count"] == speed["tiles"]
    assert speed["ratio"] == pytest.approx(
        speed["analysis_tiles_per_s"] / speed["read_only_tiles_per_s"], rel=0.01
    )
    assert memory["tiles"] == speed["tiles"] and memory["peak_rss_measured"]
    assert 50 < memory["peak_rss_mib"] < 4000
    assert "ratio analysis / read-only" in result.stdout
