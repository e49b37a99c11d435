"""A real browser for the web UI tests: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright, one per test module (Playwright's sync API keeps an event loop running on the main thread
while it is open, which asyncio tests of later modules cannot share); a page per test whose console errors fail the test (a script the
page's Content-Security-Policy blocked shows up there first).

Screenshots go to `.artifacts/webui/` at the repository root (or `$BACALHAU_TEST_ARTIFACTS/webui/`).
Skipped locally, FAILED under CI=true, when Playwright or Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_node import missing_prerequisite

CHROMIUM = os.environ.get("BACALHAU_TEST_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def wait_for_ui(port: int, timeout_s: float = 30.0) -> None:
    """Until the web UI accepts connections on 127.0.0.1:port. A node answers /agent/alive before it
    opens the UI's listener (the UI is a client of that API), so a started node is not yet a UI."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the web UI on 127.0.0.1:{port} did not open within {timeout_s:.0f}s: {exc}") from exc
            time.sleep(0.05)


def artifacts_dir() -> Path:
    """Where screenshots are saved."""
    base = Path(os.environ.get("BACALHAU_TEST_ARTIFACTS", ROOT / ".artifacts"))
    path = base / "webui"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium for the module's tests (closed before the next module: see the docstring)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_prerequisite("playwright is not installed (pip install -e '.[dev]')")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        missing_prerequisite(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


class BrowserPage:
    """A page of its own context, with the console errors it logged."""

    def __init__(self, browser: Any, viewport: dict[str, int] = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot into the artifacts folder."""
        path = artifacts_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        """Close the context."""
        self.context.close()


@pytest.fixture
def ui(chromium: Any) -> Iterator[BrowserPage]:
    """A fresh desktop-sized page; no console error may be logged by the end of the test."""
    opened = BrowserPage(chromium)
    try:
        yield opened
        # 401s and 404s a test provokes on purpose are answers, not script errors: only those count.
        errors = [e for e in opened.errors if "Failed to load resource" not in e]
        assert not errors, f"the page logged errors: {errors}"
    finally:
        opened.close()
