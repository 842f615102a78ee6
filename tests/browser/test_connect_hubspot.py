"""Connect with HubSpot in real Chromium against a real `streamlit run`: an administrator registers the
console's HubSpot app, clicks Connect, consents at a fake HubSpot on 127.0.0.1 (which redirects to the
console's GET /oauth/callback, carrying the sign-in cookie), and lands on Integrations connected; the
stored tokens are encrypted, and the callback's address replayed is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from werkzeug import Response

from core.crypto import is_encrypted
from tests.browser.conftest import ROOT, free_port, wait_until_healthy
from tests.browser.helpers import first_admin_password, open_add_menu, sign_in_as_admin
from tests.fakes.oauth_server import FakeAuthServer

pytestmark = pytest.mark.browser
CLIENT_ID = "browser-hubspot-client-0123"
CLIENT_SECRET = "hs-browser-secret-0123456789abcdef"
REFRESH_TOKEN = "na1-browser-refresh-0123456789abcdef"
ACCESS_TOKEN = "CJbrowserAccessToken0123456789abcdefABCDEF"


@pytest.fixture
def fake_hubspot(httpserver):
    server = FakeAuthServer(
        httpserver,
        "/oauth/authorize",
        "/oauth/v1/token",
        CLIENT_ID,
        CLIENT_SECRET,
        answer=lambda grant: {"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "expires_in": 1800},
        refresh_answer=lambda token: {"access_token": ACCESS_TOKEN, "refresh_token": token, "expires_in": 1800},
    ).install()

    def details(request):
        ok = request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"
        body = {"portalId": 62515, "accountType": "STANDARD"} if ok else {"status": "error"}
        return Response(json.dumps(body), 200 if ok else 401, content_type="application/json")

    httpserver.expect_request("/account-info/v3/details").respond_with_handler(details)
    httpserver.expect_request("/account-info/v3/api-usage/daily/private-apps").respond_with_json({}, status=403)
    yield server
    assert server.violations == []


@pytest.fixture
def console(tmp_path, httpserver, fake_hubspot):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
        "CONSOLE_SECRETS_DIR": str(tmp_path / "secrets"),
        "HTTP_MAX_RETRIES": "0",
        "OUTBOUND_ALLOW": "127.0.0.0/8,::1",
        "PUBLIC_BASE_URL": url,
        "FAKE_HUBSPOT_BASE": f"http://{httpserver.host}:{httpserver.port}",
    }
    for name in ("INTEGRATION_ENCRYPTION_KEY", "COOKIE_KEY"):
        env.pop(name, None)
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.browser.hubspot_at_fake",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(url, process)
        yield {"url": url, "env": env, "log": tmp_path / "streamlit.log", "tmp": tmp_path}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def register_hubspot_app(page, console) -> None:
    """Sign in as the first administrator and register the console's HubSpot app."""
    page.goto(console["url"] + "/oauth_apps")
    sign_in_as_admin(page, first_admin_password(console["log"]), "OAuth apps")
    assert page.get_by_text(console["url"] + "/oauth/callback").count() >= 1  # ready to copy
    # Every app not registered yet is open.
    hubspot_form = page.get_by_test_id("stExpander").filter(has_text="HubSpot").get_by_test_id("stForm")
    hubspot_form.get_by_role("textbox", name="Client ID").fill(CLIENT_ID)
    hubspot_form.get_by_role("textbox", name="Client secret").fill(CLIENT_SECRET)
    hubspot_form.get_by_role("button", name="Save").click()
    page.get_by_text("HubSpot: registered").wait_for()


def test_connect_with_hubspot_end_to_end(browser, console, fake_hubspot):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    register_hubspot_app(page, console)

    page.goto(console["url"] + "/integrations")
    open_add_menu(page)
    page.get_by_role("button", name="Add CRM integration").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="HubSpot").click()
    # The HubSpot form's own name field (the Chatwoot form's may still be on screen while it reruns).
    name = dialog.get_by_placeholder("e.g. Acme — HubSpot")
    name.wait_for()
    name.fill("Sales HubSpot")
    name.press("Tab")
    dialog.get_by_role("button", name="Connect with HubSpot").click()
    with context.expect_page() as opened:
        dialog.get_by_role("link", name="Continue to HubSpot").click()
    consent = opened.value
    consent.wait_for_url(console["url"] + "/integrations?oauth=*")
    consent.get_by_text("Connected Sales HubSpot (HubSpot). Connected to HubSpot portal 62515").wait_for()
    content = consent.content()
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN):
        assert secret not in content and secret not in consent.url

    engine = create_engine(console["env"]["DATABASE_URL"])
    with engine.connect() as connection:
        stored, status = connection.execute(text("SELECT configuration, status FROM integrations")).one()
        callback_seen = connection.execute(text("SELECT count(*) FROM oauth_flows WHERE used_at IS NOT NULL")).scalar()
    engine.dispose()
    config = stored if isinstance(stored, dict) else json.loads(stored)
    assert status == "connected" and config["authMode"] == "OAUTH" and is_encrypted(config["refreshToken"])
    assert callback_seen == 1
    assert fake_hubspot.exchanges == 1

    # The callback's address again, in the same signed-in browser (a replay): refused, nothing exchanged.
    (callback,) = fake_hubspot.redirects
    assert callback.startswith(console["url"] + "/oauth/callback?code=")
    replay = context.new_page()
    answer = replay.goto(callback)
    assert answer is not None and answer.status == 400
    assert "This sign-in answer was already used." in replay.content()
    assert fake_hubspot.exchanges == 1
    context.close()
