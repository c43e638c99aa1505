"""``orstream bench gpu`` / ``scripts/gpu_check.sh``: the whole run on CPU at small settings
(format, parity rows, stream trials, no GStreamer or Lightning imported), and on CUDA where a
GPU exists (marker ``gpu``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = ["--width", "320", "--height", "180", "--iterations", "3", "--stream-seconds", "0.5"]


def run_check(project_root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    # A process of its own: the check asserts what it imported itself.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "orstream.cli", "bench", "gpu", *args],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cpu_trial_run_writes_every_figure_and_imports_no_gstreamer(
    project_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gpu_check.json"
    result = run_check(
        project_root, ["--device", "cpu", *SMALL, "--max-streams", "2", "--json", str(out)]
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["imports"]["forbidden_imported"] == []
    assert {"torch", "onnxruntime", "cv2", "grpc"} <= set(report["imports"])
    parity = {(row["package"], row["graph"]): row for row in report["parity"]}
    assert set(parity) == {
        ("pitvis_workflow", "model"),
        ("imis_segmenter", "model"),
        ("imis_segmenter", "decoder"),
    }
    assert all(row["ok"] and row["max_abs_diff"] <= row["allowed"] for row in parity.values())
    models = {(row["model"], row["backend"]) for row in report["latency"]}
    for model in ("recognizer", "segmenter_encoder", "segmenter_box_prompt"):
        assert (model, "onnxruntime-cpu") in models
        assert (model, "torch-cpu-fp32") in models
    assert all(row["frame"] == "320x180" for row in report["latency"])
    trials = report["streams"]
    assert trials and trials[0]["streams"] == 1
    # The shipped app's figures for each trial: every delivered frame left each stream's video
    # path, masks came at a measured rate; the count that passed is one that was tried.
    assert all(0 < t["frames_in"] == t["frames_out"] <= t["streams"] * 15 for t in trials)
    assert all(t["masks_hz"] is not None and t["stages"]["workflow"]["items"] for t in trials)
    assert report["max_streams"] in {0} | {t["streams"] for t in trials if t["ok"]}
    assert report["capacity_search"] == "complete"
    assert "concurrent 320x180@30" in result.stdout
    assert result.stdout.rstrip().endswith(str(out))


def test_a_spent_time_budget_stops_the_stream_search_and_says_so(
    project_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gpu_check.json"
    result = run_check(
        project_root,
        ["--device", "cpu", *SMALL, "--time-budget", "0.5", "--json", str(out)],
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    # the parts before the search still ran and were written
    assert report["parity"] and report["latency"]
    assert report["streams"] == [] and report["max_streams"] == 0
    assert report["capacity_search"] == "stopped before 1 streams: the time budget ran out"
    assert "0 concurrent 320x180@30" in result.stdout
    assert "(at least; stopped before 1 streams" in result.stdout
    assert not out.with_name(out.name + ".partial").exists()


def test_without_cuda_the_gpu_run_stops_with_one_line(project_root: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("checks the message shown where CUDA is absent")
    result = run_check(project_root, ["--json", str(tmp_path / "x.json")])
    assert result.returncode == 2
    assert "sees no CUDA device" in result.stderr
    assert "Traceback" not in result.stderr


def test_gpu_check_script_runs_where_orstream_is_not_installed(
    project_root: Path, tmp_path: Path
) -> None:
    # A GPU host has the libraries but not orstream: the script installs this tree into a
    # temporary folder and runs from there. Python here starts without its site hooks (no
    # editable install of orstream), the libraries on PYTHONPATH.
    libraries = next(p for p in sys.path if p.endswith("site-packages"))
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{libraries}" exec {sys.executable} -S "$@"\n'
    )
    python.chmod(0o755)
    env = {**os.environ, "OUT_DIR": str(tmp_path / "out"), "PYTHON": str(python)}
    env["WHEELS"] = str(tmp_path / "no-wheels")  # the libraries are all there
    env["GPU_TESTS"] = "0"
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--device", "cpu", *SMALL, "--max-streams", "1"],
        cwd=project_root,
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert all(row["ok"] for row in report["parity"])
    assert report["capacity_search"] == "complete"
    assert (tmp_path / "out" / "gpu_check.log").read_text().rstrip().endswith("gpu_check.json")


@pytest.mark.gpu
def test_gpu_check_script_passes_on_this_gpu(project_root: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    env = {**os.environ, "OUT_DIR": str(tmp_path), "PYTHON": sys.executable, "GPU_TESTS": "0"}
    result = subprocess.run(
        ["bash", "scripts/gpu_check.sh", *SMALL, "--max-streams", "4"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all(row["ok"] for row in report["parity"])
    assert any(row["cuda_graphs"] for row in report["latency"])
