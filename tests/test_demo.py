"""`orstream demo` end to end with the shipped package, on a short fresh phantom case."""

import json
import subprocess
from pathlib import Path

from orstream.labels import STEP_CODES
from orstream.model_package import load_package
from orstream.pitvis_csv import read_instrument_submission, read_step_submission

SHIPPED = Path(__file__).resolve().parents[1] / "edge" / "packages" / "pitvis_workflow"


def test_shipped_package_is_valid_and_small() -> None:
    package = load_package(SHIPPED)
    assert package.card.task == "workflow_recognition"
    assert package.card.training.metrics["val_step_score"] >= 0.8
    size = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert size < 20 * 2**20


def test_demo_writes_results_and_summary(project_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "demo", "--out", out, "--seconds", "12"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["step_score"] <= 1.0
    assert summary["samples"] == 12
    assert set(summary["latency_ms"]) == {"count", "p50", "p99", "p999", "max"}
    time, steps = read_step_submission(out / "predictions" / "steps" / "video_01.csv")
    assert list(time) == list(range(12))
    assert set(steps.tolist()) <= set(STEP_CODES)
    _, slots = read_instrument_submission(out / "predictions" / "instruments" / "video_01.csv")
    assert slots.shape == (12, 2)
    assert f"step score {summary['step_score']:.3f}" in result.stdout


def test_demo_refuses_a_seed_the_model_trained_on(project_root: Path, tmp_path: Path) -> None:
    seed = load_package(SHIPPED).card.training.data["phantom"]["seed"]  # type: ignore[index]
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "demo", "--out", tmp_path, "--seed", str(seed)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "training data" in result.stderr
