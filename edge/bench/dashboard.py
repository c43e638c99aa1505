"""``orstream bench dashboard``: the OR dashboard's glass-to-glass latency, and how many viewers
one edge serves.

An ``orstream edge run --web`` process plays a live stream (a phantom by default; any source
URI, e.g. ``videotestsrc://`` to leave out the phantom's rendering) with ``web.latency_stamps``
set: every frame carries its counter in its pixels (:mod:`orstream.edge.web.frame_stamp`) as it
enters the edge, and the edge logs each counter's capture time. Headless Chromium pages
(Debian's ``chromium``) open the dashboard; in each, ``frame_stamp_reader.js`` reads the
counter off every frame the ``<video>`` presents, with the time the frame is due on screen.
Latency is that time minus the frame's capture time: the video path (which never waits for a
model) through the overlay to the web sink, VP8 encoding, the network (loopback), the browser's
jitter buffer, decoding and compositing.

A first round measures the edge with no viewer; then viewers are added one at a time, and each
round waits for the newest page's video to settle, then measures every page for ``seconds``.
The edge serves a round's viewers when each presented at least ``SERVED_SHARE`` of the
stream's frame rate (a source that fell behind, its process short of CPU, serves nobody the
stream) and the p99 latency is within ``SERVED_P99_MS``; the rounds stop at the first that is
not served.

The page's clock (``performance.timeOrigin + performance.now()``) and the edge's
(``time.time_ns()``) are the same wall clock on one machine; the bench still measures their
offset once (the best of several round trips) and reports it. The browsers run on the same
machine as the edge, so what they use is missing from the edge: each round reports the edge's
CPU, the browsers' CPU and how busy the whole machine was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from orstream.edge.bench.process_cpu import descendants, machine_busy_s, process_cpu_s
from orstream.edge.web.frame_stamp import stamp_box
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary

SERVED_SHARE = 0.95
"""A viewer is served when it presents at least this share of the stream's frame rate..."""
SERVED_P99_MS = 150.0
"""...and the round's p99 glass-to-glass latency is at most this (the issue's aim at 720p24)."""
SETTLE_S = 4.0
"""After a page opens: its connection up and the encoder's bitrate ramped up."""
START_S = 120.0
"""Longest wait for the edge to serve its dashboard (it loads the model first)."""
READY_MS = 30_000
VIDEO_SIZE = "(v => [v.videoWidth, v.videoHeight])(document.getElementById('video'))"


@dataclass(frozen=True)
class DashboardRound:
    """One round of the bench: ``viewers`` pages watching for ``seconds``.

    Attributes:
        viewers: pages watching.
        latency_ms: capture -> due on screen, every frame read by every page.
        received_ms: capture -> its last packet received by the browser (its share of that).
        captured_fps: frames the source captured per second.
        presented_fps: frames each page presented per second.
        unread: frames presented whose counter did not read (smeared by the encoder).
        edge_cpu: the edge process's CPU, in cores.
        browser_cpu: Chromium's and its driver's CPU, in cores.
        machine_busy: share of the machine's cores busy (every process).
        served: every page presented ``SERVED_SHARE`` of the stream's frame rate and p99 was
            within the aim (the edge alone: its source captured that share).
    """

    viewers: int
    latency_ms: LatencySummary
    received_ms: LatencySummary
    captured_fps: float
    presented_fps: tuple[float, ...]
    unread: int
    edge_cpu: float
    browser_cpu: float
    machine_busy: float
    served: bool

    def describe(self) -> str:
        if not self.viewers:
            return (
                f"0 viewers: captured {self.captured_fps:.1f} fps; CPU edge "
                f"{self.edge_cpu:.2f} cores, machine {100 * self.machine_busy:.0f}% busy"
            )
        rates = ", ".join(f"{rate:.1f}" for rate in self.presented_fps)
        return (
            f"{self.viewers} viewer(s): glass-to-glass {self.latency_ms.describe()}; "
            f"capture -> received p50 {self.received_ms.p50:.1f} ms; "
            f"captured {self.captured_fps:.1f} fps, presented per viewer {rates} fps, "
            f"unread {self.unread}; CPU edge {self.edge_cpu:.2f}, browsers "
            f"{self.browser_cpu:.2f} cores, machine {100 * self.machine_busy:.0f}% busy"
            f"{'' if self.served else ' -- not served'}"
        )


@dataclass(frozen=True)
class DashboardReport:
    """What ``orstream bench dashboard`` measured.

    Attributes:
        source: the stream's URI.
        width, height: its frames' size, as the browsers decode them.
        fps: its frame rate.
        seconds: measured per round.
        clock_offset_ms: the page's wall clock minus the edge's, and the bound on its error.
        cores: the machine's CPU cores.
        rounds: one per viewer count, in order, from 0 (the edge alone).
    """

    source: str
    width: int
    height: int
    fps: float
    seconds: float
    clock_offset_ms: tuple[float, float]
    cores: int
    rounds: tuple[DashboardRound, ...]

    @property
    def viewers_served(self) -> int:
        """The most viewers of a served round (0: not even one)."""
        return max((r.viewers for r in self.rounds if r.served), default=0)

    def describe(self) -> str:
        offset, bound = self.clock_offset_ms
        lines = [
            f"{self.source}: {self.width}x{self.height} at {self.fps:g} fps on loopback, "
            f"{self.cores} cores; "
            f"page clock - edge clock {offset:+.2f} ms (+/- {bound:.2f}), corrected",
            *(r.describe() for r in self.rounds),
            f"viewers served (each >= {100 * SERVED_SHARE:.0f}% of {self.fps:g} fps, p99 <= "
            f"{SERVED_P99_MS:.0f} ms): {self.viewers_served}",
        ]
        return "\n".join(lines)

    def as_json(self) -> str:
        data = asdict(self)
        data["viewers_served"] = self.viewers_served
        return json.dumps(data, indent=2, default=_plain) + "\n"


def bench_dashboard(
    source: str,
    fps: float,
    model: Path | None,
    seconds: float,
    max_viewers: int,
    chromium: Path,
    say: Callable[[str], None] = print,
) -> DashboardReport:
    """Run the rounds (see the module docstring) and report.

    Raises:
        OrstreamError: Playwright or Chromium is missing, or the edge did not serve.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise OrstreamError("bench dashboard needs Playwright (the dev extra)") from None
    if not chromium.exists():
        raise OrstreamError(f"no Chromium at {chromium} (apt install chromium)")
    with tempfile.TemporaryDirectory(prefix="orstream-dashboard-") as folder:
        stamps = Path(folder) / "stamps.jsonl"
        with _running_edge(Path(folder), source, model, max_viewers, stamps) as (
            pid,
            url,
        ):
            time.sleep(SETTLE_S)  # past the first results
            pages: list[Any] = []
            offset = (0.0, 0.0)
            rounds = [_round(pages, pid, stamps, fps, seconds, offset[0])]  # the edge alone
            say(rounds[0].describe())
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
                for viewers in range(1, max_viewers + 1):
                    pages.append(_open_page(browser, url))
                    if viewers == 1:
                        offset = _clock_offset_ms(pages[0])
                        width, height = pages[0].evaluate(VIDEO_SIZE)
                    time.sleep(SETTLE_S)
                    measured = _round(pages, pid, stamps, fps, seconds, offset[0])
                    say(measured.describe())
                    rounds.append(measured)
                    if not measured.served:
                        break
                browser.close()
    cores = os.cpu_count() or 1
    return DashboardReport(source, width, height, fps, seconds, offset, cores, tuple(rounds))


@contextmanager
def _running_edge(
    folder: Path,
    source: str,
    model: Path | None,
    max_viewers: int,
    stamps: Path,
) -> Iterator[tuple[int, str]]:
    """``orstream edge run --config`` on the source with latency stamps: its pid and dashboard
    URL; its stderr drained on a thread (a full pipe would stall its logging)."""
    config: dict[str, Any] = {
        "source": {"uri": source, "stream_id": "or1"},
        "grpc": {"enabled": False},
        "web": {
            "address": "127.0.0.1:0",
            "max_viewers": max_viewers,
            "latency_stamps": str(stamps),
        },
    }
    if model is not None:
        config["model"] = {"package": str(model)}
    (folder / "edge.yaml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orstream.cli",
            "edge",
            "run",
            "--config",
            str(folder / "edge.yaml"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    url: list[str] = []
    serving = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "OR dashboard on " in line and not serving.is_set():
                url.append(line.split("OR dashboard on ", 1)[1].strip().rstrip("/"))
                serving.set()
        serving.set()  # the edge ended: no need to wait any longer

    threading.Thread(target=drain, name="edge-stderr", daemon=True).start()
    try:
        if not serving.wait(START_S) or not url:
            tail = "".join(lines[-20:])
            raise OrstreamError(f"the edge did not serve its dashboard:\n{tail}")
        yield process.pid, url[0]
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _open_page(browser: Any, url: str) -> Any:
    """A new viewer: the dashboard in a context of its own, reading the stamps where they are
    in frames of the size it decodes."""
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=READY_MS)
    width, height = page.evaluate(VIDEO_SIZE)
    page.add_script_tag(url="/static/frame_stamp_reader.js")
    page.evaluate("box => window.frameStampReader.start(box)", stamp_box(height, width).as_dict())
    return page


def _clock_offset_ms(page: Any) -> tuple[float, float]:
    """The page's wall clock minus this process's, from the tightest of 20 round trips, and
    half that round trip (the most the estimate can be off)."""
    best = (0.0, float("inf"))
    for _ in range(20):
        before = time.time_ns()
        page_ms = page.evaluate("window.frameStampReader.now()")
        after = time.time_ns()
        half_ms = (after - before) / 2e6
        if half_ms < best[1]:
            best = (page_ms - (before + after) / 2e6, half_ms)
    return best


def _round(
    pages: list[Any], edge_pid: int, stamps: Path, fps: float, seconds: float, offset_ms: float
) -> DashboardRound:
    for page in pages:
        page.evaluate("window.frameStampReader.take()")
    browsers = [pid for pid in descendants(os.getpid()) if pid != edge_pid]
    started_ns = time.time_ns()
    edge_cpu = process_cpu_s(edge_pid)
    browser_cpu = sum(process_cpu_s(pid) for pid in browsers)
    busy, total = machine_busy_s()
    time.sleep(seconds)
    reads = [page.evaluate("window.frameStampReader.take()") for page in pages]
    ended_ns = time.time_ns()
    took_s = (ended_ns - started_ns) / 1e9
    edge_cpu = (process_cpu_s(edge_pid) - edge_cpu) / took_s
    browser_cpu = (sum(process_cpu_s(pid) for pid in browsers) - browser_cpu) / took_s
    busy_after, total_after = machine_busy_s()
    captured = _captures(stamps)
    captured_fps = sum(started_ns <= t < ended_ns for t in captured.values()) / took_s
    latency: list[float] = []
    received: list[float] = []
    presented: list[float] = []
    unread = 0
    for page_reads in reads:
        seen: set[int] = set()
        for counter, due_ms, received_ms, _ in page_reads:
            if counter is None:
                unread += 1
            elif counter in captured and counter not in seen:
                seen.add(counter)
                capture_ms = captured[counter] / 1e6
                latency.append(due_ms - offset_ms - capture_ms)
                if received_ms is not None:
                    received.append(received_ms - offset_ms - capture_ms)
        if len(page_reads) > 1:  # frames presented between the first read and the last
            (_, first_ms, _, first), (_, last_ms, _, last) = page_reads[0], page_reads[-1]
            presented.append((last - first) / max((last_ms - first_ms) / 1e3, 1e-3))
        else:
            presented.append(0.0)
    summary = LatencySummary.of(latency)
    served = not pages or (summary.count > 0 and summary.p99 <= SERVED_P99_MS)
    rates = presented if pages else [captured_fps]
    served = served and all(rate >= SERVED_SHARE * fps for rate in rates)
    return DashboardRound(
        viewers=len(pages),
        latency_ms=summary,
        received_ms=LatencySummary.of(received),
        captured_fps=captured_fps,
        presented_fps=tuple(presented),
        unread=unread,
        edge_cpu=edge_cpu,
        browser_cpu=browser_cpu,
        machine_busy=(busy_after - busy) / max(total_after - total, 1e-9),
        served=served,
    )


def _captures(stamps: Path) -> dict[int, int]:
    """Each counter's newest capture time (wall clock, ns) in the edge's log."""
    captured: dict[int, int] = {}
    for line in stamps.read_text().splitlines():
        if line.endswith("}"):  # the edge may be writing the last line
            record = json.loads(line)
            captured[record["counter"]] = record["capture_wall_ns"]
    return captured


def _plain(value: object) -> object:
    if isinstance(value, LatencySummary):
        return value.as_dict()
    raise TypeError(type(value).__name__)
