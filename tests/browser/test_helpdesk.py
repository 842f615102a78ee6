"""Helpdesk and chat widget in real Chromium against the fake Chatwoot: create an agent, give it an inbox,
copy the widget script with the code block's copy button."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.chatwoot.widget import WidgetSettings, build_script
from tests.browser.helpers import add_chatwoot, first_admin_password, idle, open_add_menu, pick_option, sign_in_as_admin
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

pytestmark = pytest.mark.browser
ADMIN_TOKEN = "cw-browser-admin-token-42"
PLATFORM_TOKEN = "cw-browser-platform-token-42"
PASSWORD = "Corr3ct-Horse!"
HOSTILE_TITLE = '</script><script>alert(1)</script> "Hi"'


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        account = add_acme_with_ada(fake, ADMIN_TOKEN)
        fake.add_inbox(account.id, "Website", website_url="https://acme.test")
        fake.add_inbox(account.id, "Shop", website_url="https://shop.acme.test")
        fake.add_platform_app("Provisioner", {account.id}, token=PLATFORM_TOKEN)
        yield fake
        assert not fake.contract_violations, fake.contract_violations


@pytest.mark.timeout(300)  # three pages and an inbox picker in one run: over 120 s on a loaded 2-core machine
def test_create_an_agent_give_it_an_inbox_and_copy_the_widget_script(browser, app_server, chatwoot):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server["url"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app_server["url"] + "/integrations")
    sign_in_as_admin(page, first_admin_password(app_server["log"]), "Integrations", exact=True)

    add_chatwoot(page, chatwoot.url, ADMIN_TOKEN, PLATFORM_TOKEN)

    # Helpdesk: create an agent with a password.
    open_add_menu(page)  # the Helpdesk's page link lives in the Add menu
    page.get_by_role("link", name="Open Helpdesk").click()
    page.get_by_text("Connected to Acme Support").wait_for()
    name = page.get_by_role("textbox", name="Agent name")
    name.fill("Bo Li")
    name.press("Enter")
    expect(page.get_by_role("textbox", name="Agent e-mail")).to_have_value("admin+bo-li@example.com")
    password = page.get_by_role("textbox", name="Password")
    password.fill(PASSWORD)
    password.press("Enter")
    idle(page)
    page.get_by_role("button", name="Create agent").click()
    page.get_by_text("Bo Li was created as an agent").wait_for()
    bo = next(u for u in chatwoot.users.values() if u.email == "admin+bo-li@example.com")
    assert bo.password == PASSWORD

    # Manage collaborators: Bo Li works in Shop.
    page.get_by_role("tab", name="Manage collaborators").click()
    page.get_by_text("Bo Li · no inbox").click()
    pick_option(page, page.get_by_test_id("stMultiSelect").filter(has_text="Inboxes Bo Li works in"), "Shop (Website)")
    page.keyboard.press("Escape")
    idle(page)
    page.get_by_text("1 unsaved change").wait_for()  # the pick reached the app before Save is pressed
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("The change was made in Chatwoot.").wait_for()
    shop = next(i for i in chatwoot.inboxes.values() if i.name == "Shop")
    assert shop.members == [bo.id]
    page.get_by_text("Bo Li · Shop").wait_for()  # the picker shows Chatwoot's membership read after the save
    page.screenshot(path=str(app_server["tmp"] / "helpdesk.png"), full_page=True)

    # Chat widget: the script for Website with a hostile launcher title, copied with the copy button.
    page.get_by_role("link", name="Chat widget").click()
    page.get_by_role("heading", name="Script").wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Website inbox").click()
    page.get_by_role("option", name="Website · https://acme.test").click()
    idle(page)
    title = page.get_by_role("textbox", name="Launcher title")
    title.fill(HOSTILE_TITLE)
    title.press("Enter")
    idle(page)
    code = page.get_by_test_id("stCode")
    code.get_by_text("\\u003c/script\\u003e").first.wait_for()
    code.hover()
    code.get_by_role("button", name="Copy to clipboard").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    website = next(i for i in chatwoot.inboxes.values() if i.name == "Website")
    expected = build_script(chatwoot.url, website.website_token, WidgetSettings(launcher_title=HOSTILE_TITLE))
    assert copied.strip() == expected.strip()
    assert "<script>alert" not in copied
    context.close()
