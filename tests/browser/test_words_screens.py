"""Activity, Statistics, Overview and Chat widget in real Chromium at 1440x900 and 390x844: sentences, failing
lists by cause, the visible Copy button that says "Copied". Screenshots go to docs/screens/ (WORDS_SCREENS=1)
or to the test's temporary folder."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import update

from tests.browser.helpers import first_admin_password, sign_in_as_admin
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

pytestmark = pytest.mark.browser
TOKEN = "cw-words-admin-token-42"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screens"


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        account = add_acme_with_ada(fake, TOKEN)
        fake.add_inbox(account.id, "Website", website_url="https://acme.test")
        yield fake
        assert not fake.contract_violations, fake.contract_violations


def seed(env: dict, chatwoot_url: str) -> None:
    """The administrator's integrations (one Chatwoot that works, failing ones of three causes) and activity."""
    import app_context
    from core import audit
    from core.models import Integration, utcnow
    from tests.factories import add_integration

    with mock.patch.dict(os.environ, env, clear=True):
        ctx = app_context.build()
    admin = ctx.users.get_by_username("admin").actor()
    desk = ctx.integrations.create(
        admin, "Acme desk", "CHATWOOT", {"baseUrl": chatwoot_url, "accountId": "1", "apiKey": TOKEN}
    )
    ctx.integrations.test(admin, desk.id)
    ctx.integrations.update(admin, desk.id, ctx.integrations.get(admin, desk.id).version, name="Acme support desk")
    causes = [
        ("Acme sales", "HUBSPOT", "auth", "401 Unauthorized: the token was revoked."),
        ("Acme pipeline", "PIPEDRIVE", "auth", "401 Unauthorized."),
        ("Warehouse", "POSTGRESQL", "timeout", "The server did not answer within 10 s."),
        ("Billing hooks", "WEBHOOK", "network", "Connection refused by 10.0.0.7:443."),
    ]
    for name, provider, check_class, message in causes:
        row = add_integration(
            ctx, admin, name, provider, status="error", checked=utcnow() - timedelta(minutes=7), message=message
        )
        with ctx.factory.begin() as session:
            session.execute(
                update(Integration).where(Integration.id == row).values(last_check_class=check_class, health="failing")
            )
    with ctx.factory.begin() as session:
        summary = {"scope": "everyone", "checked": 5, "connected": 1, "failing": 4, "skipped": 0, "cancelled": False}
        audit.record(session, admin, "integration.check_all", "success", None, summary)


def shoot(page, name: str, size: str, folder: Path) -> None:
    page.wait_for_timeout(1500)  # charts and tables draw after the script ends
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)


@pytest.mark.timeout(600)  # four pages at one size, on a machine that may be loaded
@pytest.mark.parametrize("size", list(SIZES))
def test_words_pages_at_both_sizes(browser, app_server, chatwoot, size):
    folder = DOCS if os.environ.get("WORDS_SCREENS") else app_server["tmp"]
    folder.mkdir(parents=True, exist_ok=True)
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server["url"])
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(app_server["url"])
    sign_in_as_admin(page, first_admin_password(app_server["log"]))
    seed(app_server["env"], chatwoot.url)

    page.goto(app_server["url"] + "/")  # Overview is the default page
    page.get_by_text("Failing: 4 integrations, by cause").wait_for()
    page.get_by_role("link", name="Acme sales · HubSpot").wait_for()
    # The count tiles share lines: all five on one at 1440, two a line on a phone (never one each).
    tops = [page.locator(f".st-key-tile-{tile}").bounding_box()["y"] for tile in ("total", "active", "inactive")]
    assert tops[0] == tops[1], "the first two tiles are on different lines"
    assert (tops[2] == tops[0]) == (size == "desktop")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shoot(page, "overview", size, folder)

    page.goto(app_server["url"] + "/activity")
    # A dataframe draws on a canvas; its cells are in the page for screen readers, hidden.
    page.get_by_text("Check all of 5 integrations (everyone's): 4 failed").wait_for(state="attached")
    shoot(page, "activity", size, folder)

    page.goto(app_server["url"] + "/statistics")
    page.get_by_role("heading", name="Integrations in error, by cause").wait_for()
    page.get_by_text("Not reachable · 1 integration").wait_for()
    page.get_by_role("heading", name="Checks and errors per day, last 30 days").wait_for()
    shoot(page, "statistics", size, folder)

    page.goto(app_server["url"] + "/widget")
    page.get_by_role("heading", name="Script").wait_for()
    copy = page.get_by_role("button", name="Copy the script")
    copy.wait_for()
    copy.click()
    page.get_by_role("button", name="Copied").wait_for(timeout=5_000)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == page.get_by_test_id("stCode").inner_text().strip()
    assert 'websiteToken: "' in copied
    shoot(page, "widget", size, folder)
    context.close()
