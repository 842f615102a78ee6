"""A connect link in real Chromium against a real `streamlit run`: staff create the link on the Connect
links page; a second, signed-out browser context opens it, consents at a fake HubSpot on 127.0.0.1 and
lands on the public "Connected" page; the integration is connected and tested; the link opened again,
an expired link and a forged state are refused."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.browser.test_connect_hubspot import ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, register_hubspot_app
from tests.browser.test_connect_hubspot import console as console
from tests.browser.test_connect_hubspot import fake_hubspot as fake_hubspot
from tests.browser.test_connect_hubspot import pytestmark as pytestmark

NOTE = "Staff only: renewal due in March"


def create_link(page, console, name: str) -> str:
    """Create a link on the Connect links page; the address it shows once."""
    page.goto(console["url"] + "/connect_links")
    page.get_by_role("button", name="New connect link").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Integration name").fill(name)
    dialog.get_by_role("textbox", name="Note for staff (optional)").fill(NOTE)
    dialog.get_by_role("button", name="Create link").click()
    page.get_by_text(f"Link created for {name} (HubSpot).").wait_for()
    address = page.get_by_test_id("stCode").inner_text().strip()
    assert address.startswith(console["url"] + "/connect/")
    page.get_by_role("button", name="Done, I copied it").click()
    return address


def test_a_customer_connects_by_link_in_a_signed_out_browser(browser, console, fake_hubspot):
    staff_context = browser.new_context(viewport={"width": 1300, "height": 1000})
    staff = staff_context.new_page()
    staff.set_default_timeout(30_000)
    register_hubspot_app(staff, console)
    address = create_link(staff, console, "Acme HubSpot")
    staff.screenshot(path=str(console["tmp"] / "links-created.png"), full_page=True)

    customer_context = browser.new_context(viewport={"width": 900, "height": 800})  # no sign-in cookie
    customer = customer_context.new_page()
    customer.set_default_timeout(30_000)
    answer = customer.goto(address)
    assert answer is not None and answer.status == 200
    customer.get_by_text("Integrations Console asks to connect your HubSpot account").wait_for()
    assert NOTE not in customer.content() and "admin" not in customer.content()
    customer.screenshot(path=str(console["tmp"] / "link-customer.png"), full_page=True)
    customer.get_by_role("button", name="Connect HubSpot").click()
    customer.wait_for_url(console["url"] + "/connect/done?result=connected")
    customer.get_by_text("Connected. You can close this tab.").wait_for()
    content = customer.content()
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN):
        assert secret not in content and secret not in customer.url
    assert NOTE not in content and "Acme HubSpot" not in content

    engine = create_engine(console["env"]["DATABASE_URL"])
    with engine.connect() as connection:
        name, status = connection.execute(text("SELECT name, status FROM integrations")).one()
        completed = connection.execute(text("SELECT count(*) FROM connect_links WHERE completed_at IS NOT NULL"))
        assert completed.scalar() == 1
    assert (name, status) == ("Acme HubSpot", "connected")
    assert fake_hubspot.exchanges == 1

    # The owner (the administrator here) is told on their next page: once.
    staff.goto(console["url"] + "/connect_links")
    staff.get_by_text("Your customer connected Acme HubSpot (HubSpot) by link.").wait_for()
    staff.screenshot(path=str(console["tmp"] / "links-completed.png"), full_page=True)

    again = customer.goto(address)
    assert again is not None and again.status == 410
    customer.get_by_text("This link was already used to connect").wait_for()

    expiring = create_link(staff, console, "Later HubSpot")
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE connect_links SET expires_at = '2000-01-01 00:00:00' WHERE integration_name = 'Later HubSpot'")
        )
    expired = customer.goto(expiring)
    assert expired is not None and expired.status == 410
    customer.get_by_text("This link has expired.").wait_for()

    # Staff send the expired link again: a new address, which works; the old one is dead.
    staff.goto(console["url"] + "/connect_links")
    staff.get_by_test_id("stSelectbox").filter(has_text="Act on a link").click()
    staff.get_by_role("option", name="Later HubSpot · HubSpot · Expired").click()
    staff.get_by_role("button", name="Send again").click()
    staff.get_by_text("A new address for Later HubSpot: the old one no longer works.").wait_for()
    renewed = staff.get_by_test_id("stCode").inner_text().strip()
    staff.screenshot(path=str(console["tmp"] / "links-resent.png"), full_page=True)
    assert renewed != expiring
    assert customer.goto(expiring).status == 404  # type: ignore[union-attr]
    customer.set_viewport_size({"width": 390, "height": 844})
    assert customer.goto(renewed).status == 200  # type: ignore[union-attr]
    customer.get_by_role("button", name="Connect HubSpot").wait_for()
    customer.screenshot(path=str(console["tmp"] / "link-customer-phone.png"), full_page=True)

    forged = customer.goto(console["url"] + "/oauth/callback?code=code-x&state=" + "f" * 43)
    assert forged is not None and forged.status == 400
    customer.get_by_text("This sign-in answer is not one the console started.").wait_for()
    assert fake_hubspot.exchanges == 1
    engine.dispose()
    customer_context.close()
    staff_context.close()
