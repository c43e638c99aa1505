"""``orstream bench capacity`` at a small size: the search runs trials through the shipped app,
each with the figures the report promises, and the count found is one that passed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orstream.edge.bench.capacity import Trial, search


def trial(streams: int, ok: bool) -> Trial:
    return Trial(streams, 1.0, 1.0, 1.0, 0, 0, 50.0, 0, 0, 0.0, 1.0, ok)


def test_the_search_doubles_then_bisects_to_the_boundary() -> None:
    tried: list[int] = []
    found, why = search(64, lambda n: trial(n, n <= 11), lambda t: tried.append(t.streams))
    assert (found, why) == (11, "complete")
    assert tried == [1, 2, 4, 8, 16, 12, 10, 11]


def test_the_search_stops_where_it_may_not_go_on() -> None:
    found, why = search(
        64, lambda n: trial(n, True), lambda t: None, lambda n: "out of time" if n > 4 else None
    )
    assert (found, why) == (4, "out of time")


def test_a_small_capacity_run_writes_every_figure(
    project_root: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    out = tmp_path / "capacity.json"
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream", "bench", "capacity",
            "--width", "160", "--height", "96", "--fps", "12", "--seconds", "4",
            "--model", random_workflow_package, "--max-streams", "2", "--json", out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert (report["width"], report["height"], report["fps"]) == (160, 96, 12)
    assert [t["streams"] for t in report["trials"]][:2] == [1, 2]
    for t in report["trials"]:
        assert {"streams", "p99_ms", "dropped", "cpu_percent"} <= set(t)
        assert 0 < t["frames_in"] == t["frames_out"] <= t["streams"] * 48
        assert t["cpu_percent"] > 0 and t["stages"]["workflow"]["items"] > 0
    assert report["streams"] in {0} | {t["streams"] for t in report["trials"] if t["ok"]}
    assert f"capacity: {report['streams']} concurrent 160x96@12 streams" in result.stdout
