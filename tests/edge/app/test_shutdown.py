"""Stopping the edge: SIGTERM drains as Ctrl-C does (a playable recording, the CSVs, a report that
says the run was interrupted), health goes NOT_SERVING first, and a second signal forces."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import parse_config
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.sources.video_file import probe_video

PHANTOM = "phantom://?seed=3&seconds=60&width=320&height=180&fps=12"


def test_sigterm_drains_the_run_and_exits_0_in_time(
    project_root: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    record, results = tmp_path / "out.mp4", tmp_path / "results"
    process = subprocess.Popen(
        [
            str(project_root / ".venv/bin/orstream"),
            *("edge", "run", "--no-grpc", "--source", PHANTOM),
            *("--model", random_workflow_package, "--record", record, "--results", results),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The first progress line comes a few seconds into the run, after the stop signals are
    # handled: loading alone can take longer than that on a busy machine.
    lines: list[str] = []
    running = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(process, lines, running), daemon=True)
    reader.start()
    assert running.wait(120), "".join(lines)[-2000:]
    assert process.poll() is None
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    took = time.monotonic() - sent
    reader.join(10)
    assert process.stdout is not None
    stdout, stderr = process.stdout.read(), "".join(lines)
    assert process.returncode == 0, stderr[-2000:]
    assert took < 5.0
    assert "stopped by SIGTERM: drained" in stderr and "Traceback" not in stderr
    assert "source cam0 (phantom://" in stdout and ": interrupted," in stdout  # not "ended"
    frames = probe_video(record).frame_count  # finalised: it opens and has the frames played
    assert frames >= 12
    rows = (results / "steps" / "video_01.csv").read_text().splitlines()
    assert len(rows) >= 2  # header + a row per second inferred


def _read_lines(process: subprocess.Popen, lines: list[str], running: threading.Event) -> None:
    """Collect a process's stderr; set ``running`` at its first progress line."""
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if " frames in, " in line:
            running.set()


def test_a_second_signal_exits_at_once() -> None:
    script = (
        "import os, signal, time\n"
        "from orstream.stop_signals import StopSignals\n"
        "asked = []\n"
        "with StopSignals(asked.append):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    assert asked == ['SIGTERM'], asked\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert done.returncode == 128 + signal.SIGINT, done.stderr
    assert time.monotonic() - started < 4


def test_an_interrupt_turns_health_off_before_the_graph_drains() -> None:
    config = parse_config({"source": {"uri": "phantom://"}, "grpc": {"enabled": False}}, "test")
    source = PhantomSource(seed=3, seconds=30, width=160, height=90, fps=12.0, stream_id="cam0")
    health: list[tuple[bool, bool]] = []
    app = EdgeApp(config, sources={"cam0": source}, sinks={})
    app.on_health = lambda serving: health.append((serving, app.graph.wait(0)))
    runner = threading.Thread(target=app.run)
    runner.start()
    time.sleep(1.5)
    app.interrupt("SIGTERM")
    runner.join(10)
    assert not runner.is_alive() and app.drained
    assert health[0] == (True, False)
    off = health.index(next(h for h in health if not h[0]))
    assert health[off] == (False, False)  # NOT_SERVING while the graph was still running
    assert all(not serving for serving, _ in health[off:])
    assert app.interrupted_by == "SIGTERM"
    assert [s.state for s in app.status().sources] == ["interrupted"]
