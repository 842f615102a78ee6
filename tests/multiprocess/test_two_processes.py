"""Two app processes behind one PostgreSQL database behave as one app.

Processes A and B are separate `streamlit run`s on their own ports: they share no memory, only the
database (and the keys). In real Chromium:

- a change made through A (a sign-in, a new integration) is seen through B, and a sign-out on B ends
  the sign-in on A: the cookie A issued is accepted by B because the session lives in the database;
- the sign-in failure limit counts failures from both processes together, and once reached refuses
  the right password on either;
- while A tests an integration, B's test of the same integration is refused at once, B's test of
  another one runs, and once A has finished B can test it again.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlalchemy import func, select

from core.models import Integration, RateLimitHit
from core.ratelimit import LIMITS, Bucket
from tests.browser.helpers import open_add_menu, tick_row
from tests.chromium import wait_for_cookie
from tests.multiprocess.conftest import COOKIE_NAME, is_postgresql

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.browser,
    pytest.mark.skipif(
        not is_postgresql(os.environ.get("TEST_DATABASE_URL")),
        reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql://... (two processes cannot share a "
        "temporary SQLite file the way production shares a database server)",
    ),
]

PASSWORD = "alice-password-1"
TOKEN = "multiprocess-crm-token-42"
BUSY = "is being checked right now"
WAIT_MS = 20_000  # per step; generous for a loaded CI machine, still bounded


# ----- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def new_page(browser, apps, request, tmp_path):
    """A page in a browser context of its own (own cookies), optionally carrying one cookie.

    When the test fails, every page's screenshot is kept in the test's tmp_path and the end of both
    processes' logs is printed.
    """
    contexts = []

    def make(cookie: dict | None = None, url: str | None = None):
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        contexts.append(context)
        if cookie is not None:
            context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": url}])
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        return page

    yield make
    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    for number, context in enumerate(contexts):
        if failed:
            for page in context.pages:
                page.screenshot(path=str(tmp_path / f"page-{number}.png"), full_page=True)
        context.close()
    if failed:
        print(f"screenshots of the failed test's pages: {tmp_path}")
        for app in apps:
            print(f"----- the end of process {app.name}'s log ({app.url}):\n{app.log_tail()}")


def idle(page) -> None:
    """Wait until Streamlit has finished running the page (a click during a rerun can be lost)."""
    page.wait_for_timeout(250)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")


def submit_sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for()
    idle(page)
    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page, url: str, username: str, password: str) -> dict:
    """Sign in on one process; returns the session cookie it wrote."""
    submit_sign_in(page, url + "/integrations", username, password)
    page.get_by_role("heading", name="Integrations", exact=True).wait_for()
    cookie = wait_for_cookie(page, COOKIE_NAME)  # HttpOnly: set by the server, not in document.cookie
    idle(page)
    return cookie


def open_integrations(page, url: str) -> None:
    page.goto(url + "/integrations")
    page.get_by_role("heading", name="Integrations", exact=True).wait_for()
    idle(page)


def shows(box, text: str) -> None:
    """A selectbox shows its choice as the value of its input."""
    expect(box).to_have_value(re.compile(re.escape(text)), timeout=WAIT_MS)


def success(page, text: str):
    return page.get_by_test_id("stAlertContentSuccess").filter(has_text=text)


def error(page, text: str):
    return page.get_by_test_id("stAlertContentError").filter(has_text=text)


def click_test_connection(page) -> None:
    page.locator(".st-key-row-test").get_by_role("button").click()


ANOTHER_ROW, SLOW_ROW = 0, 1


NOTHING_TICKED = "Tick rows to test"  # the hint the list shows when no row is ticked


def click_row_until(page, index: int, shown, attempts: int = 3) -> None:
    """Click row `index`'s box until `shown` is visible. Chromium sometimes drops the first click on the
    grid after a rerun that redrew it (the canvas takes it as focus); each click is followed by a full
    idle, so a retried click never undoes one that landed. Bounded in count and time."""
    for attempt in range(attempts):
        tick_row(page, index)
        try:
            shown.wait_for(timeout=4_000)
            break
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
    idle(page)


def pick(page, index: int, name: str) -> None:
    """Tick one row of the Integrations list and wait for its panel (its name first) to show."""
    click_row_until(page, index, page.get_by_text(re.compile(rf"^{re.escape(name)} · ")).first)


def untick(page, index: int) -> None:
    """Untick the only ticked row and wait for the list to say that nothing is ticked."""
    click_row_until(page, index, page.get_by_text(NOTHING_TICKED))


def custom_crm(url: str, name: str, path: str) -> dict:
    return {
        "name": name,
        "apiEndpoint": url,
        "authType": "BEARER",
        "healthPath": path,
        "credentials": json.dumps({"token": TOKEN}),
    }


@pytest.fixture
def alice(ctx):
    return ctx.users.create(None, "alice", "Alice Member", "alice@example.com", PASSWORD, "member", "STARTER").actor()


# ----- a change through one is seen through the other ----------------------------------------


def test_a_sign_in_and_a_new_integration_made_on_a_are_seen_on_b(apps, new_page, ctx, alice, slow_crm):
    a, b = apps
    page_a = new_page()
    cookie = sign_in(page_a, a.url, "alice", PASSWORD)

    # Add an integration through A's form (saved without a test, so nothing is contacted).
    open_add_menu(page_a)
    page_a.locator(".st-key-add-CRM").get_by_role("button").click()
    dialog = page_a.get_by_role("dialog")
    shows(dialog.get_by_role("combobox", name="Provider"), "Chatwoot")
    dialog.get_by_role("textbox", name="Integration name").fill("Acme helpdesk")
    dialog.get_by_role("textbox", name="Chatwoot Base URL").fill(slow_crm.url)
    dialog.get_by_role("textbox", name="Account ID").fill("1")
    dialog.get_by_role("textbox", name="API Access Token").fill(TOKEN)
    dialog.get_by_role("button", name="Save integration").click()
    page_a.get_by_role("dialog").wait_for(state="detached")
    idle(page_a)
    tick_row(page_a, 0)
    page_a.get_by_text(re.compile(r"^Acme helpdesk · Chatwoot")).first.wait_for()

    # B has never seen this browser: the cookie A wrote signs it in, and the new integration is listed.
    page_b = new_page(cookie, b.url)
    page_b.goto(b.url + "/integrations")
    page_b.get_by_role("heading", name="Integrations", exact=True).wait_for()
    idle(page_b)
    tick_row(page_b, 0)
    page_b.get_by_text(re.compile(r"^Acme helpdesk · Chatwoot")).first.wait_for()
    assert page_b.get_by_role("button", name="Sign in").count() == 0
    assert [v.name for v in ctx.integrations.list_integrations(alice)] == ["Acme helpdesk"]

    # Signing out on B ends the sign-in on A as well: a new page load on A asks for the password.
    idle(page_b)
    page_b.get_by_role("button", name="Sign out").click()
    page_b.get_by_role("button", name="Sign in").wait_for()
    page_a.reload()
    page_a.get_by_role("button", name="Sign in").wait_for()
    page_a.wait_for_timeout(500)
    assert page_a.get_by_role("heading", name="Integrations", exact=True).count() == 0
    assert slow_crm.paths() == []  # saving without a test contacted nothing


# ----- a rate limit holds across both --------------------------------------------------------


def test_the_sign_in_failure_limit_counts_failures_on_both_processes(apps, new_page, ctx, alice):
    a, b = apps
    allowed, _ = LIMITS["sign_in_failure"]
    page = new_page()
    # Alternate A, B, A, B, …: neither process alone sees more than half of the failures.
    for attempt in range(1, allowed + 1):
        url = (a, b)[attempt % 2].url
        submit_sign_in(page, url, "alice", f"wrong-password-{attempt}")
        expected = "do not match an active account" if attempt < allowed else "Too many failed sign-ins"
        expect(page.get_by_test_id("stAlert")).to_contain_text(expected, timeout=WAIT_MS)

    with ctx.factory() as session:  # every attempt counted once, in the one bucket both processes share
        counted = session.scalar(
            select(func.count(RateLimitHit.id)).where(RateLimitHit.bucket == Bucket("sign_in_failure", "alice").key)
        )
    assert counted == allowed

    # Now even the right password is refused, whichever process is asked.
    for app in (a, b):
        submit_sign_in(page, app.url, "alice", PASSWORD)
        page.get_by_text("Too many failed sign-ins for this user name").wait_for()
        idle(page)
        assert page.get_by_role("heading", name="Overview").count() == 0, app.name


# ----- the per-integration check lock holds across both --------------------------------------


def test_a_check_running_on_a_makes_b_wait_for_that_integration_only(apps, new_page, ctx, alice, slow_crm):
    a, b = apps
    slow = ctx.integrations.create(alice, "Slow CRM", "CUSTOM", custom_crm(slow_crm.url, "Slow CRM", "/slow"))
    ctx.integrations.create(alice, "Another CRM", "CUSTOM", custom_crm(slow_crm.url, "Another CRM", "/fast"))

    page_a = new_page()
    cookie = sign_in(page_a, a.url, "alice", PASSWORD)
    page_b = new_page(cookie, b.url)
    open_integrations(page_b, b.url)
    for page in (page_a, page_b):  # the list in natural order: Another CRM, Slow CRM
        pick(page, SLOW_ROW, "Slow CRM")

    # A starts testing Slow CRM; its request is held at the fake CRM until released below.
    click_test_connection(page_a)
    assert slow_crm.slow_started.wait(10), "A's test did not reach the CRM"

    # Meanwhile B is refused at once for that integration ...
    click_test_connection(page_b)
    error(page_b, BUSY).wait_for(timeout=5_000)  # at once: B does not wait for A's check
    # ... while another integration can be tested from B as usual.
    untick(page_b, SLOW_ROW)
    pick(page_b, ANOTHER_ROW, "Another CRM")
    click_test_connection(page_b)
    success(page_b, "Connected to Another CRM").wait_for(timeout=8_000)
    assert success(page_a, "Connected to Slow CRM").count() == 0, "A's test ended before B was checked"
    assert slow_crm.paths() == ["/slow", "/fast"], "B's refused test must not reach the CRM"

    # A finishes; now B's test of Slow CRM runs.
    slow_crm.release()
    success(page_a, "Connected to Slow CRM").wait_for()
    idle(page_b)
    untick(page_b, ANOTHER_ROW)
    pick(page_b, SLOW_ROW, "Slow CRM")
    click_test_connection(page_b)
    success(page_b, "Connected to Slow CRM").wait_for()
    assert error(page_b, BUSY).count() == 0
    assert slow_crm.paths() == ["/slow", "/fast", "/slow"]

    with ctx.factory() as session:
        status = session.scalar(select(Integration.status).where(Integration.id == slow.id))
    assert status == "connected"
