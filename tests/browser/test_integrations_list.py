"""The Integrations list in real Chromium at 1440x900 and 390x844: the list above the fold, the compact Add
menu, ticking rows, a bulk action with its one message, and a selected row opening its page.

Screenshots go to the test's tmp folder (list-1440.png, list-menu-1440.png, list-390.png, …)."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    HEADER_HEIGHT,
    ROW_HEIGHT,
    first_admin_password,
    idle,
    open_add_menu,
    sign_in_as_admin,
    tick_row,
)

pytestmark = pytest.mark.browser


def add_integrations(app_server, monkeypatch, names) -> None:
    """Integrations saved straight through the services on the app's own database (nothing is contacted)."""
    import app_context
    from core.settings import load_settings

    for name in ("DATABASE_URL", "CONSOLE_SECRETS_DIR", "OUTBOUND_ALLOW"):
        monkeypatch.setenv(name, app_server["env"][name])
    from core.audit import Actor

    ctx = app_context.build(load_settings(), migrate=False)
    # Behind the app, as the CLI does: the administrator's one-time password is not chosen yet.
    user = ctx.users.get_by_username("admin")
    admin = Actor(user.id, user.username, user.role, user.tier)
    for name in names:
        config = {"baseUrl": "http://127.0.0.1:9", "accountId": "1", "apiKey": "cw-browser-list-token-0123"}
        ctx.integrations.create(admin, name, "CHATWOOT", config)
    ctx.engine.dispose()


def open_list(browser, app_server, monkeypatch, names, width: int, height: int):
    """The first start (which creates the administrator), the integrations, then the signed-in list."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(30_000)
    page.goto(app_server["url"] + "/integrations")
    page.get_by_role("button", name="Sign in").wait_for()
    password = first_admin_password(app_server["log"])
    add_integrations(app_server, monkeypatch, names)
    sign_in_as_admin(page, password, "Integrations", exact=True)
    page.get_by_test_id("stDataFrame").first.wait_for()
    idle(page)
    return page


def test_the_list_at_desktop_width(browser, app_server, monkeypatch):
    names = [f"Acme {n}" for n in (1, 2, 3, 20, 100)] + ["Beta desk"]
    page = open_list(browser, app_server, monkeypatch, names, 1440, 900)
    shots = app_server["tmp"]
    page.screenshot(path=str(shots / "list-1440.png"))

    grid = page.get_by_test_id("stDataFrame").first.bounding_box()
    assert grid is not None and grid["y"] + HEADER_HEIGHT + 3 * ROW_HEIGHT < 900, "the list is below the fold"
    assert not page.get_by_role("button", name="Add CRM integration").is_visible()  # behind the one button
    page.get_by_role("button", name="Add integration").click()
    page.get_by_role("button", name="Add CRM integration").wait_for()
    page.screenshot(path=str(shots / "list-menu-1440.png"))
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Add CRM integration").wait_for(state="hidden")

    # A half-filled add dialog survives Escape; its Cancel asks before throwing the typing away.
    open_add_menu(page)
    page.get_by_role("button", name="Add CRM integration").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Integration name").fill("Half typed")
    dialog.get_by_label("Integration name").press("Tab")
    idle(page)
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    assert dialog.is_visible() and dialog.get_by_label("Integration name").input_value() == "Half typed"
    dialog.get_by_role("button", name="Cancel").click()
    dialog.get_by_text("Discard the changes you made to this integration?").wait_for()
    page.screenshot(path=str(shots / "list-discard-1440.png"))
    dialog.get_by_role("button", name="Discard changes").click()
    dialog.wait_for(state="hidden")
    idle(page)

    tick_row(page, 0)  # Acme 1
    tick_row(page, 2)  # Acme 3
    page.get_by_text("2 selected:").wait_for()
    idle(page)
    page.screenshot(path=str(shots / "list-selected-1440.png"))
    page.locator(".st-key-bulk-deactivate").get_by_role("button").click()
    page.get_by_test_id("stAlertContentSuccess").get_by_text("Deactivated 2 integrations.").wait_for()
    idle(page)
    assert page.get_by_text("2 selected:").count() == 0  # the selection is cleared after the action
    page.screenshot(path=str(shots / "list-after-1440.png"))

    tick_row(page, 3)  # Acme 20: natural order puts it before Acme 100
    page.get_by_text("Acme 20 · Chatwoot").wait_for()
    page.locator(".st-key-row-toggle").wait_for()
    page.get_by_role("link", name="Open", exact=True).click()
    page.get_by_role("heading", name="Acme 20").wait_for()


def test_the_list_at_phone_width(browser, app_server, monkeypatch):
    page = open_list(browser, app_server, monkeypatch, ["Acme desk", "Beta desk", "Gamma desk"], 390, 844)
    shots = app_server["tmp"]
    page.screenshot(path=str(shots / "list-390.png"), full_page=True)
    page.get_by_role("button", name="Add integration").click()
    page.get_by_role("button", name="Add CRM integration").wait_for()
    page.screenshot(path=str(shots / "list-menu-390.png"))
    page.keyboard.press("Escape")
    idle(page)
    tick_row(page, 1)
    page.get_by_text("Beta desk · Chatwoot").wait_for()
    page.locator(".st-key-row-duplicate").get_by_role("button").click()
    page.get_by_test_id("stAlertContentSuccess").get_by_text("Added Beta desk (copy)").wait_for()
    idle(page)
    page.screenshot(path=str(shots / "list-after-390.png"))
