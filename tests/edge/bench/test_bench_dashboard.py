"""``orstream bench dashboard`` at a small size: an edge alone, then one Chromium viewer whose
every presented frame reads as a counter the edge logged, with the figures the report promises
(timings are the bench's to report, not this test's to judge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import run_cli

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_one_viewer_reads_every_frame_it_presents(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    report = tmp_path / "dashboard.json"
    code, out, err = run_cli(
        *("bench", "dashboard", "--width", "320", "--height", "180", "--fps", "12"),
        *("--seconds", "2", "--viewers", "1", "--no-model", "--json", str(report)),
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert (data["width"], data["height"], data["fps"]) == (320, 180, 12.0)
    alone, viewed = data["rounds"]
    assert (alone["viewers"], viewed["viewers"]) == (0, 1)
    assert alone["latency_ms"]["count"] == 0 and alone["captured_fps"] > 0
    assert viewed["latency_ms"]["count"] >= 6 and viewed["unread"] == 0
    assert 0 < viewed["latency_ms"]["p50"] < viewed["latency_ms"]["max"] + 1e-9
    assert len(viewed["presented_fps"]) == 1 and viewed["edge_cpu"] > 0
    assert "glass-to-glass" in out and "viewers served" in out
