"""GET /oauth/callback (routes.py) in front of core/connect/flows.py: the browser is sent to a fixed
console page with only an opaque outcome id, a refusal is plain text, and no address from the request
is ever redirected to. Driven through the Starlette route itself, with a fake Salesforce login server."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit

import pytest
from starlette.requests import Request

import routes
from tests.contract.connect_helpers import PUBLIC_BASE_URL, callback_params
from tests.contract.test_connect_salesforce import CLIENT_ID, CLIENT_SECRET, SECRETS
from tests.contract.test_connect_salesforce import fake as fake
from ui import state


@pytest.fixture
def console(ctx, monkeypatch, admin):
    monkeypatch.setattr(state, "context", lambda: ctx)  # the services the routes ask for
    ctx.oauth_apps.save(admin, "SALESFORCE", CLIENT_ID, CLIENT_SECRET, "")
    return ctx


def call(query: str, cookie: str | None = None, cookie_name: str = "integrations_console_test"):
    headers = [(b"host", b"console.example.com")]
    if cookie:
        headers.append((b"cookie", f"{cookie_name}={cookie}".encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/oauth/callback",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("203.0.113.9", 50000),
        "scheme": "https",
        "server": ("console.example.com", 443),
    }
    return asyncio.run(routes.oauth_callback(Request(scope)))


def start(ctx, fake, owner) -> tuple[str, str]:
    """(the sign-in cookie's token, the callback's query string after consent)."""
    token = ctx.sessions.start(owner.id, 1)
    url = ctx.connect.start(owner, ctx.sessions.handle_for(token), "SALESFORCE", "Acme")
    return token, urlencode(callback_params(fake.consent(url)))


def test_the_callback_redirects_to_the_console_with_only_an_opaque_outcome(console, fake, owner, assert_no_secret):
    token, query = start(console, fake, owner)
    answer = call(query, token)
    assert answer.status_code == 303
    location = answer.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == PUBLIC_BASE_URL + "/integrations"
    assert parts.query.startswith("oauth=") and "&" not in parts.query
    assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    code = dict(p.split("=", 1) for p in query.split("&"))["code"]
    for secret in (*SECRETS, code):
        assert_no_secret(secret, location)
    outcome = console.connect.outcome(owner, parts.query.removeprefix("oauth="))
    assert outcome is not None and outcome.connected


def test_a_replayed_callback_is_a_plain_refusal(console, fake, owner):
    token, query = start(console, fake, owner)
    assert call(query, token).status_code == 303
    again = call(query, token)
    assert again.status_code == 400
    assert again.headers["content-type"].startswith("text/plain")
    assert "already used" in again.body.decode() and "location" not in again.headers


def test_without_the_starting_session_cookie_the_callback_is_refused(console, fake, owner):
    _, query = start(console, fake, owner)
    answer = call(query)
    assert answer.status_code == 400 and "another browser" in answer.body.decode()
    assert fake.exchanges == 0


@pytest.mark.parametrize("extra", ["&state=second", "&code=second"])
def test_a_parameter_given_twice_is_refused(console, fake, owner, extra):
    token, query = start(console, fake, owner)
    answer = call(query + extra, token)
    assert answer.status_code == 400 and "twice" in answer.body.decode()
    assert fake.exchanges == 0


def test_no_redirect_target_is_taken_from_the_request(console, fake, owner):
    token, query = start(console, fake, owner)
    answer = call(query + "&next=https://evil.example.com&redirect_uri=https://evil.example.com", token)
    assert urlsplit(answer.headers["location"]).netloc == "console.example.com"


def test_the_callback_is_rate_limited_per_client_address(console, fake, owner, monkeypatch):
    monkeypatch.setitem(console.limiter._limits, "oauth_callback", (2, 600))
    assert [call("state=forged").status_code for _ in range(3)] == [400, 400, 400]
    assert "Too many" in call("state=forged").body.decode()
