"""Debian's Chromium, headless, for the dashboard's browser tests: one browser per test module
(launched with the module's ``browser_args``), a fresh context, so a fresh login, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_pages import CHROMIUM


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    """Chromium's command-line switches (a module that needs some overrides this)."""
    return []


@pytest.fixture(scope="module")
def browser(browser_args: list[str]) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=browser_args
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True)  # lets the test evaluate its own probes
    page = context.new_page()
    yield page
    context.close()
