"""SIGTERM stops an edge promptly while a page watches its dashboard: the page's event stream
and video connection are closed by the edge rather than waited for (an open event stream once
held the exit for the web server's 60 s shutdown wait and ended it with a TimeoutError), the
run drains and exits cleanly, and the page says it lost the edge."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from dashboard_pages import WAIT_MS, log_in, needs_chromium, wait_for_video
from running_edge import LONG, running_edge

from orstream.edge.app.compose import DRAIN_S

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")

STOP_LIMIT_S = DRAIN_S + 10.0
"""The run's drain and the servers' closing, with room for a busy machine; far below the
60 s an open page used to hold the exit for."""


def test_sigterm_stops_the_edge_promptly_with_a_page_open(
    page: Any, project_root: Path, tmp_path: Path
) -> None:
    with running_edge(project_root, tmp_path, (LONG,), segmenter=False) as edge:
        log_in(page, edge.web_url, edge.viewer_token)
        wait_for_video(page)
        sync_api.expect(page.locator("body")).to_have_attribute(
            "data-state", "playing", timeout=WAIT_MS
        )
        asked = time.monotonic()
        edge.process.send_signal(signal.SIGTERM)
        try:
            code = edge.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the edge was still running 60 s after SIGTERM with a page open")
        took_s = time.monotonic() - asked
        assert edge.stderr_closed.wait(10)
        stderr = "".join(edge.stderr)
        assert code == 0, stderr[-3000:]
        assert took_s < STOP_LIMIT_S, f"stopped {took_s:.1f} s after SIGTERM"
        assert "stopped by SIGTERM: drained" in stderr
        assert "Traceback" not in stderr and "TimeoutError" not in stderr
        sync_api.expect(page.locator("#video-state")).to_contain_text(
            "connection to the edge lost", timeout=WAIT_MS
        )
