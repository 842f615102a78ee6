"""People in real Chromium: an administrator adds a person, who signs in with the one-time password on a
phone and must choose their own; the helpdesk's agent e-mail and inbox pickers at 1440x900 and 390x844."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    COOKIE,
    add_chatwoot,
    first_admin_password,
    idle,
    pick_option,
    settle,
    sign_in_as_admin,
)
from tests.chromium import wait_for_cookie
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

pytestmark = pytest.mark.browser
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
ADMIN_TOKEN = "cw-browser-admin-token-77"
OWN_PASSWORD = "carols-own-password-1"


def shots(app_server) -> Path:
    """Where screenshots go: SCREENSHOT_DIR when set (to look at them), else the test's tmp directory."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or app_server["tmp"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fits(page) -> bool:
    """No sideways scrolling: nothing is wider than the window."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def autocomplete(page, label: str) -> str | None:
    return page.get_by_role("textbox", name=label, exact=True).get_attribute("autocomplete")


@pytest.mark.timeout(300)  # two browsers, each page drawn in full on a loaded machine
def test_a_one_time_password_must_be_replaced_at_the_first_sign_in_on_a_phone(browser, app_server):
    folder = shots(app_server)
    desk = browser.new_page(viewport=DESKTOP)
    desk.set_default_timeout(20_000)
    desk.goto(app_server["url"] + "/admin")
    sign_in_as_admin(desk, first_admin_password(app_server["log"]), "Staff accounts")
    form = desk.get_by_test_id("stForm").filter(has_text="Add account")
    form.get_by_role("textbox", name="User name").fill("carol")
    form.get_by_role("textbox", name="Full name").fill("Carol New")
    form.get_by_role("textbox", name="E-mail").fill("carol@example.com")
    form.get_by_role("button", name="Add account").click()
    desk.get_by_text("Added carol.").wait_for()
    one_time = desk.get_by_test_id("stCode").inner_text().strip()
    assert len(one_time) >= 10
    expect(desk.get_by_test_id("stDataFrame")).to_be_visible()
    desk.screenshot(path=str(folder / "staff-accounts-1440.png"), full_page=True)

    phone = browser.new_page(viewport=PHONE)
    phone.set_default_timeout(20_000)
    phone.goto(app_server["url"])
    phone.get_by_role("button", name="Sign in").wait_for()
    assert autocomplete(phone, "User name") == "username"
    assert autocomplete(phone, "Password") == "current-password"
    phone.get_by_role("textbox", name="User name").fill("carol")
    phone.get_by_role("textbox", name="Password").fill(one_time)
    phone.get_by_role("button", name="Sign in").click()
    phone.get_by_role("heading", name="Choose a new password").wait_for(timeout=45_000)
    settle(phone)
    assert autocomplete(phone, "New password") == "new-password"
    assert autocomplete(phone, "New password again") == "new-password"
    assert phone.get_by_role("link", name="Integrations").count() == 0  # nothing else is reachable
    assert fits(phone)

    phone.get_by_role("textbox", name="New password", exact=True).fill(OWN_PASSWORD)
    phone.get_by_role("textbox", name="New password again").fill("a-different-one-2")
    phone.get_by_role("button", name="Save my password").click()
    phone.get_by_text("The two new passwords differ").wait_for()
    expect(phone.get_by_role("textbox", name="New password", exact=True)).to_have_value(OWN_PASSWORD)  # kept
    phone.screenshot(path=str(folder / "choose-password-390.png"), full_page=True)

    phone.get_by_role("textbox", name="New password again").fill(OWN_PASSWORD)
    phone.get_by_role("button", name="Save my password").click()
    phone.get_by_role("heading", name="Overview").wait_for(timeout=45_000)
    wait_for_cookie(phone, COOKIE)
    idle(phone)
    phone.get_by_text("Your new password is set").first.wait_for()
    phone.screenshot(path=str(folder / "after-first-sign-in-390.png"), full_page=True)
    phone.wait_for_timeout(1500)  # the rotated session's cookie is handed over
    phone.reload()
    phone.get_by_role("heading", name="Overview").wait_for(timeout=45_000)  # still signed in, new session

    phone.goto(app_server["url"] + "/account")  # Your account, for every role
    phone.get_by_role("heading", name="Your account").wait_for(timeout=45_000)
    idle(phone)
    expect(phone.get_by_role("textbox", name="Full name")).to_have_value("Carol New")
    assert autocomplete(phone, "Current password") == "current-password"
    assert autocomplete(phone, "E-mail") == "email"
    assert fits(phone)
    phone.screenshot(path=str(folder / "your-account-390.png"), full_page=True)


def add_chatwoot_from_admin(page, chatwoot) -> None:
    page.goto(page.url.split("/admin")[0].rstrip("/") + "/integrations")
    page.get_by_role("heading", name="Integrations", exact=True).wait_for(timeout=45_000)
    idle(page)
    add_chatwoot(page, chatwoot.url, ADMIN_TOKEN)


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        account = add_acme_with_ada(fake, ADMIN_TOKEN)
        fake.add_inbox(account.id, "Website", website_url="https://acme.test")
        fake.add_inbox(account.id, "Shop", website_url="https://shop.acme.test")
        fake.add_inbox(account.id, "Support mail", channel_type="Channel::Email")
        yield fake
        assert not fake.contract_violations, fake.contract_violations


@pytest.mark.timeout(300)  # two widths, each page drawn in full on a loaded machine
def test_the_helpdesk_agent_email_and_inboxes_at_both_widths(browser, app_server, chatwoot):
    folder = shots(app_server)
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(20_000)
    page.goto(app_server["url"])
    sign_in_as_admin(page, first_admin_password(app_server["log"]))
    add_chatwoot_from_admin(page, chatwoot)
    page.goto(app_server["url"] + "/helpdesk")
    page.get_by_text("Connected to Acme Support").wait_for(timeout=45_000)
    idle(page)

    name = page.get_by_role("textbox", name="Agent name")
    name.fill("Bo Li")
    name.press("Enter")
    email = page.get_by_role("textbox", name="Agent e-mail")
    expect(email).to_have_value("admin+bo-li@example.com")  # the suggestion, in a field of its own
    page.screenshot(path=str(folder / "helpdesk-create-1440.png"), full_page=True)
    email.fill("bo.li@shop.example")
    email.press("Enter")
    idle(page)
    page.get_by_role("button", name="Create agent").click()
    page.get_by_text("Bo Li was added as an agent").wait_for()
    assert any(u.email == "bo.li@shop.example" for u in chatwoot.users.values())

    page.get_by_role("tab", name="Manage collaborators").click()
    page.get_by_text("Bo Li · no inbox").click()
    pick_option(page, page.get_by_test_id("stMultiSelect").filter(has_text="Inboxes Bo Li works in"), "Shop (Website)")
    page.keyboard.press("Escape")
    idle(page)
    page.get_by_text("1 unsaved change").wait_for()
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("The change was made in Chatwoot.").wait_for()
    bo = next(u for u in chatwoot.users.values() if u.email == "bo.li@shop.example")
    shop = next(i for i in chatwoot.inboxes.values() if i.name == "Shop")
    assert shop.members == [bo.id]
    page.get_by_text("Bo Li · Shop").wait_for()
    idle(page)  # the page re-reads Chatwoot after the save: shoot the finished run, not a half-drawn one
    assert page.get_by_text("unsaved change").count() == 0, "the saved membership still shows as unsaved"
    page.screenshot(path=str(folder / "helpdesk-inboxes-1440.png"), full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    page.get_by_text("Connected to Acme Support").wait_for(timeout=45_000)
    idle(page)
    assert fits(page)
    page.get_by_role("textbox", name="Agent name").fill("Cy Ng")
    page.get_by_role("textbox", name="Agent name").press("Enter")
    expect(page.get_by_role("textbox", name="Agent e-mail")).to_have_value("admin+cy-ng@example.com")
    page.screenshot(path=str(folder / "helpdesk-create-390.png"), full_page=True)
    page.get_by_role("tab", name="Manage collaborators").click()
    page.get_by_text("Bo Li · Shop").click()
    pick_option(
        page, page.get_by_test_id("stMultiSelect").filter(has_text="Inboxes Bo Li works in"), "Website (Website)"
    )
    page.keyboard.press("Escape")
    idle(page)
    assert fits(page)
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("The change was made in Chatwoot.").wait_for()
    website = next(i for i in chatwoot.inboxes.values() if i.name == "Website")
    assert bo.id in website.members
    idle(page)  # the page re-reads Chatwoot after the save: shoot the finished run, not a half-drawn one
    assert page.get_by_text("unsaved change").count() == 0, "the saved membership still shows as unsaved"
    page.screenshot(path=str(folder / "helpdesk-inboxes-390.png"), full_page=True)
