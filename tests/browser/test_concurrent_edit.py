"""Two tabs edit one integration in real Chromium: the later save is refused, never merged silently."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.browser.helpers import first_admin_password, open_add_menu, settle, sign_in_as_admin, tick_row

pytestmark = pytest.mark.browser


def integrations_tab(context, url):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url + "/integrations")
    page.get_by_role("heading", name="Integrations", exact=True).wait_for()
    settle(page)
    return page


def open_edit(page):
    tick_row(page, 0)  # the one integration: its row's actions
    page.locator(".st-key-row-edit").get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Integration name").wait_for()
    return dialog


def test_two_tabs_the_later_save_is_refused_and_reload_shows_the_other_version(browser, app_server):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    a = context.new_page()
    a.set_default_timeout(20_000)
    a.goto(app_server["url"] + "/integrations")
    sign_in_as_admin(a, first_admin_password(app_server["log"]), "Integrations", exact=True)
    open_add_menu(a)
    a.get_by_role("button", name="Add CRM integration").click()
    dialog = a.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Integration name").fill("Acme desk")
    dialog.get_by_role("textbox", name="Chatwoot Base URL").fill("http://127.0.0.1:9")
    dialog.get_by_role("textbox", name="Account ID").fill("1")
    dialog.get_by_role("textbox", name="API Access Token").fill("cw-browser-token-0123456789")
    dialog.get_by_role("button", name="Save integration").click()
    a.get_by_role("dialog").wait_for(state="detached")

    b = integrations_tab(context, app_server["url"])  # the second tab, signed in by the same cookie
    in_a, in_b = open_edit(a), open_edit(b)
    in_b.get_by_role("textbox", name="Integration name").fill("Renamed in tab B")
    in_b.get_by_role("textbox", name="Account ID").fill("22")
    in_b.get_by_role("button", name="Save integration").click()
    b.get_by_role("dialog").wait_for(state="detached")

    in_a.get_by_role("textbox", name="Integration name").fill("Renamed in tab A")
    in_a.get_by_role("button", name="Save integration").click()
    refusal = in_a.get_by_text("admin changed this integration at")
    refusal.wait_for()
    a.screenshot(path=str(app_server["tmp"] / "conflict.png"), full_page=True)

    engine = create_engine(app_server["env"]["DATABASE_URL"])
    with engine.connect() as connection:
        name, stored = connection.execute(text("SELECT name, configuration FROM integrations")).one()
        saved_at = connection.execute(
            text("SELECT at FROM audit_events WHERE action = 'integration.update' ORDER BY id DESC")
        ).scalar()
    engine.dispose()
    assert name == "Renamed in tab B" and '"22"' in str(stored).replace("'", '"')  # tab B's save is intact
    assert str(saved_at)[:19] in refusal.inner_text()  # when, to the second

    in_a.get_by_role("button", name="Reload their version").click()
    reloaded = a.get_by_role("dialog").get_by_role("textbox", name="Integration name")
    a.wait_for_function(
        "() => [...document.querySelectorAll('[role=dialog] input')].some(i => i.value === 'Renamed in tab B')"
    )
    assert reloaded.input_value() == "Renamed in tab B"
    assert a.get_by_role("dialog").get_by_role("textbox", name="Account ID").input_value() == "22"
    assert a.get_by_text("admin changed this integration at").count() == 0
    context.close()
