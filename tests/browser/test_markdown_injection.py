"""In Chromium: a hostile integration name and error text load no image and show no link (issue 10, item 7)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.browser.conftest import ROOT
from tests.browser.helpers import first_admin_password, sign_in_as_admin, tick_row

pytestmark = pytest.mark.browser
NAME = "![x](http://127.0.0.1:9/x.png) [link](http://127.0.0.1:9/) https://127.0.0.1:9/ <b>b</b> :red[x] $x$"
ACTIVE = (
    "img[src*='127.0.0.1:9'], a[href*='127.0.0.1:9'], [data-testid='stMarkdownContainer'] b, "
    ".katex, [data-testid='stMarkdownContainer'] span[style*='color']"
)


def add_hostile_integration(env: dict) -> None:
    config = {
        "name": NAME,  # Custom CRM's messages name the CRM
        "apiEndpoint": "http://127.0.0.1:9",
        "authType": "BEARER",
        "healthPath": "/",
        "credentials": json.dumps({"token": "custom-token-123"}),
    }
    subprocess.run(
        [sys.executable, "manage.py", "integrations", "add", "--name", NAME, "--provider", "CUSTOM", "--config", "-"],
        input=json.dumps(config),
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_hostile_text_renders_as_text(browser, app_server):
    page = browser.new_page()
    requests_to_9 = []
    page.on("request", lambda request: "127.0.0.1:9/" in request.url and requests_to_9.append(request.url))
    page.goto(app_server["url"])
    password = first_admin_password(app_server["log"])
    add_hostile_integration(app_server["env"])
    sign_in_as_admin(page, password)
    page.goto(app_server["url"] + "/integrations")
    page.get_by_test_id("stDataFrame").first.wait_for()
    tick_row(page, 0)  # its row's panel names it, and holds its actions
    page.locator(".st-key-row-test").get_by_role("button").click()
    error = page.get_by_test_id("stAlertContentError").filter(has_text="refused the connection")
    error.wait_for()
    assert "https://127.0.0.1:9/ <b>b</b> :red[x] $x$" in error.inner_text().replace("\u2060", "")
    page.locator(".st-key-row-toggle").get_by_role("button").click()
    page.get_by_test_id("stAlertContentSuccess").get_by_text("Deactivated").wait_for()
    page.locator(".st-key-row-delete").get_by_role("button").click()
    page.get_by_role("dialog").wait_for()
    page.wait_for_timeout(500)
    assert page.locator(ACTIVE).count() == 0, page.locator(ACTIVE).evaluate_all("els => els.map(e => e.outerHTML)")
    assert requests_to_9 == []
