"""Measure the OR dashboard's CPU cost per viewer: the edge's process CPU time (user + system,
all its threads) over a fixed interval with 0, 1 and 2 browsers watching one stream.

Runs ``orstream edge run --web`` on a live phantom stream with the shipped recognizer, then
opens headless Chromium pages (Debian's ``chromium``) one by one; the browsers' own CPU is not
counted. Prints one line per viewer count: CPU as a share of one core, and the frames per
second each browser decoded meanwhile (what the CPU bought).

    .venv/bin/python scripts/dashboard_viewer_cpu.py --width 1280 --height 720 --fps 24
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DECODED = "document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured per viewer count")
    parser.add_argument("--viewers", type=int, default=2, help="up to this many")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    uri = f"phantom://?seed=4&seconds=3600&width={args.width}&height={args.height}&fps={args.fps:g}"
    edge = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/orstream"),
            *("edge", "run", "--source", uri, "--no-grpc"),
            *("--model", str(ROOT / "edge/packages/pitvis_workflow")),
            *("--web", f"127.0.0.1:{port}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert edge.stderr is not None
        for line in edge.stderr:
            if "OR dashboard on" in line:
                break
        else:
            print("the edge ended before serving", file=sys.stderr)
            return 1
        time.sleep(3.0)  # past loading and the first results
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
            baseline = None
            pages = []
            for viewers in range(args.viewers + 1):
                if viewers:
                    page = browser.new_context().new_page()
                    pages.append(page)
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.wait_for_selector("#video", state="visible")
                    time.sleep(3.0)  # the connection up and the encoder at its rate
                started, used = time.monotonic(), cpu_s(edge.pid)
                decoded = [page.evaluate(DECODED) for page in pages]
                time.sleep(args.seconds)
                took = time.monotonic() - started
                share = (cpu_s(edge.pid) - used) / took
                rates = [
                    f"{(page.evaluate(DECODED) - before) / took:.1f}"
                    for page, before in zip(pages, decoded, strict=True)
                ]
                baseline = share if baseline is None else baseline
                print(
                    f"{args.width}x{args.height} at {args.fps:g} fps, {viewers} viewer(s): "
                    f"edge CPU {100 * share:.1f}% of a core "
                    f"({100 * (share - baseline):+.1f} over none); frames/s decoded per "
                    f"viewer: {', '.join(rates) or '-'}",
                    flush=True,
                )
            browser.close()
    finally:
        edge.send_signal(signal.SIGTERM)
        edge.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
