"""``orstream bench reconnect``: a real RTSP camera unplugged and plugged back, over and over.

One edge runtime (the workflow model on the camera's feed) runs through every cycle without a
restart. Each cycle starts the camera (a process of its own serving a live H.264 test pattern
on the same port), waits for the runtime's first new result, keeps the camera up for ``up_s``,
kills it (SIGKILL: no goodbye on the wire) and leaves it away for ``down_s``. Per cycle it
measures how long inference took to resume after the camera's return, and how long health
took to turn NOT_SERVING after the loss; over the run, the process's resident memory and
threads, to show that nothing grows with the cycles.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import parse_config
from orstream.latency import LatencySummary
from orstream.streams.sinks.rtsp_server import spawn_test_camera

RESUME_LIMIT_S = 30.0
"""A cycle whose inference has not resumed this long after the camera's return failed."""


@dataclass(frozen=True)
class ReconnectReport:
    """What ``orstream bench reconnect`` measured.

    Attributes:
        cycles: kill/restore cycles run.
        resumed: cycles in which inference resumed within ``RESUME_LIMIT_S``.
        resume_ms: camera back (serving) -> the runtime's first new result.
        health_off_ms: camera killed -> health NOT_SERVING.
        rss_mb: resident memory after the first and the last cycle, and the most seen.
        threads: the process's threads after the first and the last cycle.
        reconnects: reconnects the source counted.
        frames_in: frames the runtime received.
    """

    cycles: int
    resumed: int
    resume_ms: LatencySummary
    health_off_ms: LatencySummary
    rss_mb: tuple[float, float, float]
    threads: tuple[int, int]
    reconnects: int
    frames_in: int

    def describe(self) -> str:
        first, last, most = self.rss_mb
        return "\n".join(
            (
                f"cycles {self.cycles}, inference resumed in {self.resumed}, "
                f"source reconnects {self.reconnects}, frames in {self.frames_in}",
                f"camera back -> first result: {self.resume_ms.describe()}",
                f"camera killed -> health NOT_SERVING: {self.health_off_ms.describe()}",
                f"resident memory: {first:.0f} MB after cycle 1, {last:.0f} MB after the last, "
                f"most {most:.0f} MB; threads {self.threads[0]} -> {self.threads[1]}",
            )
        )


def bench_reconnect(
    model: Path,
    cycles: int,
    up_s: float,
    down_s: float,
    say: object = print,
    json_path: Path | None = None,
) -> ReconnectReport:
    """Run the cycles (see the module docstring) and report."""
    port = _free_port()
    config = parse_config(
        {
            "source": {"uri": f"rtsp://127.0.0.1:{port}/camera", "stream_id": "cam"},
            "model": {"package": str(model), "rate_hz": 4},
            "overlay": {"enabled": False},
            "grpc": {"enabled": False},
        },
        "bench",
    )
    health: list[tuple[float, bool]] = []
    app = EdgeApp(config, on_health=lambda serving: health.append((time.monotonic(), serving)))
    results = app.hub.subscribe(["cam"], capacity=4096)
    runner = threading.Thread(target=app.run, name="bench-edge")
    resume_ms: list[float] = []
    off_ms: list[float] = []
    rss: list[float] = []
    threads: list[int] = []
    camera = None
    runner.start()
    try:
        for cycle in range(cycles):
            camera = spawn_test_camera(port)
            back = time.monotonic()
            while results.get(0) is not None:
                pass  # results from before the loss do not count
            if results.get(RESUME_LIMIT_S) is not None:
                resume_ms.append((time.monotonic() - back) * 1e3)
            time.sleep(up_s)
            camera.kill()
            killed = time.monotonic()
            camera.wait()
            deadline = killed + 5.0
            while time.monotonic() < deadline:
                off = [t for t, serving in health if t >= killed and not serving]
                if off:
                    off_ms.append((off[0] - killed) * 1e3)
                    break
                time.sleep(0.01)
            rss.append(_rss_mb())
            threads.append(threading.active_count())
            say(  # type: ignore[operator]
                f"cycle {cycle + 1}/{cycles}: resumed in "
                f"{resume_ms[-1] if len(resume_ms) == cycle + 1 else float('nan'):.0f} ms, "
                f"health off in {off_ms[-1] if off_ms else float('nan'):.0f} ms, "
                f"RSS {rss[-1]:.0f} MB"
            )
            time.sleep(down_s)
    finally:
        if camera is not None:
            camera.kill()
            camera.wait()
        app.interrupt("end of bench")
        runner.join(30)
    source = app.status().sources[0]
    report = ReconnectReport(
        cycles=cycles,
        resumed=len(resume_ms),
        resume_ms=LatencySummary.of(resume_ms),
        health_off_ms=LatencySummary.of(off_ms),
        rss_mb=(rss[0], rss[-1], max(rss)),
        threads=(threads[0], threads[-1]),
        reconnects=source.reconnects,
        frames_in=source.frames_in,
    )
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(report), default=_plain, indent=2) + "\n")
    return report


def _plain(value: object) -> object:
    if isinstance(value, LatencySummary):
        return value.as_dict()
    raise TypeError(type(value).__name__)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20
