"""A new staff member's first run, in real Chromium: sign in, connect Chatwoot, token stored encrypted."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from core.crypto import is_encrypted
from tests.browser.helpers import CHOSEN, COOKIE, first_admin_password, open_add_menu, sign_in_as_admin
from tests.chromium import wait_for_cookie
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

pytestmark = pytest.mark.browser
TOKEN = "cw-browser-canary-token-42"


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        add_acme_with_ada(fake, TOKEN)
        yield fake
        assert not fake.contract_violations, fake.contract_violations


def test_sign_in_and_add_chatwoot_integration(browser, app_server, chatwoot):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(20_000)

    page.goto(app_server["url"] + "/integrations")  # a deep link while signed out shows only sign-in
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_role("heading", name="Integrations", exact=True).count() == 0

    password = first_admin_password(app_server["log"])
    sign_in_as_admin(page, password, "Integrations", exact=True)  # the deep link is honoured once signed in
    open_add_menu(page)
    page.get_by_role("button", name="Add CRM integration").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Integration name").fill("Acme helpdesk")
    dialog.get_by_role("textbox", name="Chatwoot Base URL").fill(chatwoot.url)
    dialog.get_by_role("textbox", name="Account ID").fill("1")
    dialog.get_by_role("textbox", name="API Access Token").fill(TOKEN)
    dialog.get_by_role("button", name="Test connection").click()
    dialog.get_by_text("Connected to Acme Support as Ada Admin, an administrator.").wait_for()

    dialog.get_by_role("button", name="Save integration").click()
    page.get_by_role("dialog").wait_for(state="detached")
    page.get_by_test_id("stAlertContentSuccess").get_by_text("Connected to Acme Support as Ada Admin").wait_for()
    page.screenshot(path=str(app_server["tmp"] / "integrations.png"), full_page=True)
    assert TOKEN not in page.content()

    assert len(chatwoot.requests_to("/api/v1/profile")) == 2  # the form's test and the saved one's check
    engine = create_engine(app_server["env"]["DATABASE_URL"])
    with engine.connect() as connection:
        stored, status = connection.execute(text("SELECT configuration, status FROM integrations")).one()
    engine.dispose()
    assert TOKEN not in str(stored)
    assert status == "connected"
    config = stored if isinstance(stored, dict) else __import__("json").loads(stored)
    assert is_encrypted(config["apiKey"])


def test_sign_in_survives_a_reload_and_sign_out_ends_it(browser, app_server):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(app_server["url"])
    password = first_admin_password(app_server["log"])
    sign_in_as_admin(page, password)

    page.reload()
    page.get_by_role("heading", name="Overview").wait_for()  # the signed cookie signs the person back in

    kept = [c for c in page.context.cookies() if c["name"] == "integrations_console_auth"]
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    wait_for_cookie(page, COOKIE, present=False)  # the server cleared it
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_role("heading", name="Overview").count() == 0

    # A copy of the old cookie (kept by a browser, or stolen) no longer signs anyone in.
    page.context.add_cookies(kept)
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for()
    page.wait_for_timeout(1000)
    assert page.get_by_role("heading", name="Overview").count() == 0

    # The printed password was one-time (the first sign-in chose another): it stays in a log, so it no
    # longer signs anyone in.
    assert CHOSEN[password] != password
    page.get_by_label("User name").fill("admin")
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("do not match an active account").wait_for()
    sign_in_as_admin(page, password)  # with the one chosen in its place
