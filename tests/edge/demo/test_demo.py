"""`orstream demo` end to end with the shipped package, on a short fresh phantom case."""

import json
import subprocess
from pathlib import Path

from project_paths import PACKAGES

from orstream.labels import STEP_CODES
from orstream.package.loading import load_package
from orstream.pitvis.csv_files import read_instrument_submission, read_step_submission
from orstream.streams.sources.video_file import probe_video

SHIPPED = PACKAGES / "pitvis_workflow"


def test_shipped_package_is_valid_and_small() -> None:
    package = load_package(SHIPPED)
    assert package.card.task == "workflow_recognition"
    assert package.card.training.metrics["val_step_score"] >= 0.8
    size = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert size < 20 * 2**20


def test_demo_runs_live_and_writes_results_and_summary(project_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    seconds = 8
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream", "demo", "--out", out,
            "--seconds", str(seconds), "--grpc", "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["step_score"] <= 1.0
    for key in ("p50", "p99", "p999", "max"):
        assert summary[key] > 0
    # Live at 24 fps: every frame the phantom camera delivered left the video path; frames
    # the camera itself could not render in time (a loaded machine) are counted, not lost.
    assert summary["video_frames_out"] == summary["video_frames_in"]
    dropped = summary["frames_dropped"]
    assert summary["video_frames_in"] + dropped["phantom.source"] == seconds * 24
    assert dropped["phantom.overlay"] == 0
    assert dropped["phantom.video_path"] == dropped["phantom.source"]
    assert summary["results"] == seconds  # the 1 Hz model inferred one frame per second
    assert summary["grpc_results_received"] == seconds
    assert probe_video(out / "overlay.mp4").frame_count == summary["video_frames_out"]
    time, steps = read_step_submission(out / "predictions" / "steps" / "video_01.csv")
    assert list(time) == list(range(seconds))
    assert set(steps.tolist()) <= set(STEP_CODES)
    _, slots = read_instrument_submission(out / "predictions" / "instruments" / "video_01.csv")
    assert slots.shape == (seconds, 2)
    assert f"step score {summary['step_score']:.3f}" in result.stdout
    # Live masks at the demo's segmentation rate, checked over gRPC against the phantom's masks.
    masks = summary["segmentation"]
    assert masks["segmented_frames"] >= seconds
    for key in ("live_instrument_dice", "live_anatomy_dice", "box_prompt_dice"):
        assert masks[key] is None or 0.0 <= masks[key] <= 1.0
    assert masks["live_anatomy_targets"] + masks["live_instrument_targets"] > 0
    assert (
        "segmentation:" in result.stdout and "error" not in result.stdout.split("segmentation:")[1]
    )


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
