"""orstream bench phantom reports speed against real time and per-frame percentiles."""

import re
import subprocess
from pathlib import Path


def test_bench_reports_rate_ratio_and_percentiles(project_root: Path) -> None:
    # A subprocess, because the benchmark pins its own process to one core.
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream",
            "bench",
            "phantom",
            "--seconds",
            "1",
            "--width",
            "160",
            "--height",
            "90",
            "--case-seconds",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 thread" in out
    render = re.search(r"render: 24 frames .* ([\d.]+) frames/s = ([\d.]+)x real time", out)
    assert render and float(render.group(1)) > 0
    assert abs(float(render.group(1)) / 24.0 - float(render.group(2))) < 0.02
    number = r"([\d.]+) ms"
    percentiles = re.search(rf"p50 {number}, p99 {number}, p99.9 {number}, max {number}", out)
    assert percentiles
    p50, p99, p999, worst = map(float, percentiles.groups())
    assert 0 < p50 <= p99 <= p999 <= worst
    assert re.search(r"encode .* ([\d.]+) frames/s", out)


def test_bench_rejects_bad_seconds(project_root: Path) -> None:
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "bench", "phantom", "--seconds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--seconds" in result.stderr


def test_bench_times_frames_with_their_masks(project_root: Path) -> None:
    arguments = ["--seconds", "1", "--width", "160", "--height", "90", "--case-seconds", "30"]
    arguments += ["--labels", "--no-encode"]
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "bench", "phantom", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "with instrument and anatomy masks" in result.stdout
    assert re.search(r"render: 24 frames .* ([\d.]+) frames/s", result.stdout)
    assert "encode" not in result.stdout
