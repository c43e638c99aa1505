"""What the dashboard's browser tests share: where Chromium is, how long to wait, and how a
test logs in and waits for the video."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt install chromium)"
)
"""Marks a module whose edge is not worth starting without a browser."""
WAIT_MS = 30_000


def log_in(page: Any, web_url: str, token: str) -> None:
    page.goto(web_url + "/")
    page.fill("#token", token)
    page.press("#token", "Enter")


def wait_for_video(page: Any) -> None:
    """Until the ``<video>`` has a picture to show."""
    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=WAIT_MS)
