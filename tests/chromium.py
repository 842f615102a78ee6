"""Debian's chromium for the browser tests and the start-up benchmark: where it is, how it is started.

Never `playwright install`: its browser downloads fail here; playwright drives /usr/bin/chromium.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps calling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def launched_browser() -> Iterator:
    """A pytest fixture's body: the browser, or a skip (a failure in CI, where `make test` installs it)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make test` should have installed it")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def session_cookie(page, name: str) -> dict | None:
    """The browser's cookie `name` with a value, or None. The sign-in cookie is HttpOnly, so a page's
    document.cookie never shows it: ask the browser (playwright's context) instead."""
    return next((c for c in page.context.cookies() if c["name"] == name and c["value"]), None)


def wait_for_cookie(page, name: str, present: bool = True, seconds: float = 20) -> dict | None:
    """Wait until the browser holds (or, present=False, no longer holds) the cookie; the cookie or None."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cookie = session_cookie(page, name)
        if (cookie is not None) == present:
            return cookie
        page.wait_for_timeout(100)
    raise AssertionError(f"the cookie {name} was {'never set' if present else 'never cleared'} within {seconds} s")
