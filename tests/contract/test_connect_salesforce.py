"""Connecting Salesforce by consent (web server flow with PKCE) against a fake login server on 127.0.0.1.

The fake's authorize endpoint checks the request as Salesforce documents it (response_type=code,
client_id, redirect_uri, PKCE S256) and its token endpoint exchanges a code once, for the exact
redirect_uri and the matching code_verifier, answering errors as Salesforce does ({error,
error_description}). After the exchange the console tests the integration with the refresh-token flow
against the same fake, as the Salesforce contract tests do.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from core.connect.flows import FlowRefused
from core.crypto import is_encrypted
from core.integrations.health import Health
from core.models import Integration, OAuthFlow, utcnow
from providers import salesforce
from tests.contract.connect_helpers import (
    REDIRECT_URI,
    assert_a_customer_connects_by_link,
    callback_params,
    plain_config,
    signed_in,
    stored_rows_text,
    use_public_base_url,
)
from tests.fakes.oauth_server import FakeAuthServer

CLIENT_ID = "3MVG9console.app.0123456789abcdefABCDEF"
CLIENT_SECRET = "sf-app-secret-0123456789ABCDEF0123456789"
REFRESH_TOKEN = "5Aep861consent.refresh.0123456789abcdef"
NEW_REFRESH_TOKEN = "5Aep861reconnect.refresh.fedcba987654"
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQconsent.access.0123456789"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, NEW_REFRESH_TOKEN, ACCESS_TOKEN)
MY_DOMAIN = "https://acme.my.salesforce.com"
USERINFO = {
    "user_id": "005xx000001SwiUAAS",
    "organization_id": "00Dxx0000001gPLEAY",
    "preferred_username": "ada@acme.test",
}


@pytest.fixture
def fake(monkeypatch, httpserver, ctx):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(salesforce, "OAUTH_LOGIN_BASE", base + "/login")
    monkeypatch.setattr(salesforce, "LOGIN_BASE", base + "/{host}")
    # The consent's answer names the My Domain; the later refreshes name the fake's /instance.
    monkeypatch.setattr(salesforce, "INSTANCE_URL_PATTERN", f"(?:{re.escape(base)}/instance|{re.escape(MY_DOMAIN)})")
    refresh = {"token": REFRESH_TOKEN}
    server = FakeAuthServer(
        httpserver,
        "/login/services/oauth2/authorize",
        "/login/services/oauth2/token",
        CLIENT_ID,
        CLIENT_SECRET,
        answer=lambda grant: {
            "access_token": ACCESS_TOKEN,
            "refresh_token": refresh["token"],
            "instance_url": refresh.get("instance_url", MY_DOMAIN),
            "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            "scope": grant.scope,
            "token_type": "Bearer",
            "issued_at": "1764200000000",
        },
        require_pkce=True,
    ).install()
    server.refresh = refresh  # type: ignore[attr-defined]
    httpserver.expect_request("/acme.my.salesforce.com/services/oauth2/token", method="POST").respond_with_json(
        {"access_token": ACCESS_TOKEN, "instance_url": base + "/instance", "token_type": "Bearer"}
    )
    httpserver.expect_request("/instance/services/oauth2/userinfo").respond_with_json(USERINFO)
    httpserver.expect_request("/instance/services/data/").respond_with_json([{"version": "63.0"}])
    httpserver.expect_request("/instance/services/data/v63.0/limits").respond_with_json(
        {"DailyApiRequests": {"Max": 15000, "Remaining": 14998}}
    )
    use_public_base_url(ctx)
    yield server
    assert server.violations == []


@pytest.fixture
def app(ctx, admin):
    return ctx.oauth_apps.save(admin, "SALESFORCE", CLIENT_ID, CLIENT_SECRET, "")


def connect(ctx, fake, actor, handle, **start):
    url = ctx.connect.start(actor, handle, "SALESFORCE", **start)
    params = callback_params(fake.consent(url))
    return url, params, ctx.connect.complete(params, handle, "127.0.0.1")


def test_the_authorize_url_asks_for_a_code_with_pkce_and_the_exact_redirect_uri(ctx, fake, app, owner):
    url = ctx.connect.start(owner, signed_in(ctx, owner), "SALESFORCE", "Acme")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(salesforce.OAUTH_LOGIN_BASE + "/services/oauth2/authorize?")
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == "api refresh_token"  # the defaults
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43  # 256 bits
    assert CLIENT_SECRET not in url
    # Neither the state nor the verifier is stored as it is.
    assert query["state"] not in stored_rows_text(ctx)


def test_staff_connect_stores_encrypted_tokens_creates_and_tests_the_integration(
    ctx, fake, app, owner, audit_texts, assert_no_secret
):
    handle = signed_in(ctx, owner)
    url, params, outcome_id = connect(ctx, fake, owner, handle, name="Acme Salesforce")
    outcome = ctx.connect.outcome(owner, outcome_id)
    assert outcome is not None and outcome.connected, outcome
    assert "Connected Acme Salesforce" in outcome.message and "00Dxx0000001gPLEAY" in outcome.message
    view = ctx.integrations.get(owner, outcome.integration_id)
    assert (view.name, view.provider, view.owner, view.status) == ("Acme Salesforce", "SALESFORCE", "olga", "connected")
    config = plain_config(ctx, view.id)
    assert config == {
        "instanceUrl": MY_DOMAIN,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    with ctx.factory() as session:
        stored = session.get(Integration, view.id).configuration
    assert is_encrypted(stored["refreshToken"]) and is_encrypted(stored["clientSecret"])
    actions = [t for t in audit_texts() if '"oauth.' in t]
    assert [a.split('"action": "')[1].split('"')[0] for a in actions] == [
        "oauth.start",
        "oauth.exchange",
        "oauth.connect",
    ]
    for secret in (*SECRETS, params["code"], params["state"]):
        assert_no_secret(secret, url if secret != params["state"] else "", outcome.message, view.configuration)
        assert_no_secret(secret, *audit_texts(), stored_rows_text(ctx))
    assert outcome_id not in stored_rows_text(ctx)  # stored only as a keyed hash


def test_the_outcome_is_only_for_the_person_who_started(ctx, fake, app, owner, admin):
    _, _, outcome_id = connect(ctx, fake, owner, signed_in(ctx, owner), name="Acme")
    assert ctx.connect.outcome(owner, outcome_id) is not None
    assert ctx.connect.outcome(admin, outcome_id) is None
    assert ctx.connect.outcome(owner, "forged-" + outcome_id[7:]) is None


def test_a_callback_that_arrives_twice_is_refused(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    _, params, _ = connect(ctx, fake, owner, handle, name="Acme")
    exchanges = fake.exchanges
    with pytest.raises(FlowRefused, match="already used"):
        ctx.connect.complete(params, handle, "127.0.0.1")
    assert fake.exchanges == exchanges  # nothing was sent to the provider again
    with ctx.factory() as session:
        assert len(session.scalars(select(Integration)).all()) == 1


def test_a_state_from_another_session_is_refused_and_burnt(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "SALESFORCE", "Acme")))
    with pytest.raises(FlowRefused, match="another browser or session"):
        ctx.connect.complete(params, signed_in(ctx, owner), "127.0.0.1")
    with pytest.raises(FlowRefused, match="already used"):  # burnt: not even its own session may use it now
        ctx.connect.complete(params, handle, "127.0.0.1")
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "SALESFORCE", "Acme")))
    with pytest.raises(FlowRefused, match="another browser or session"):
        ctx.connect.complete(params, None, "127.0.0.1")  # signed out
    assert fake.exchanges == 0


def test_a_forged_state_is_refused(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    url = ctx.connect.start(owner, handle, "SALESFORCE", "Acme")
    params = callback_params(fake.consent(url))
    with pytest.raises(FlowRefused, match="not one the console started"):
        ctx.connect.complete(params | {"state": params["state"][:-2] + "xx"}, handle, "127.0.0.1")
    with pytest.raises(FlowRefused, match="no valid sign-in state"):
        ctx.connect.complete({"code": params["code"]}, handle, "127.0.0.1")
    assert fake.exchanges == 0


def test_a_state_expires_after_ten_minutes(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    url = ctx.connect.start(owner, handle, "SALESFORCE", "Acme")
    with ctx.factory.begin() as session:
        flow = session.scalars(select(OAuthFlow)).one()
        assert 9 * 60 < (flow.expires_at - flow.created_at).total_seconds() <= 10 * 60
        session.execute(update(OAuthFlow).values(expires_at=utcnow()))
    with pytest.raises(FlowRefused, match="expired"):
        ctx.connect.complete(callback_params(fake.consent(url)), handle, "127.0.0.1")
    assert fake.exchanges == 0


def test_a_code_that_belongs_to_another_flow_is_refused(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    first = callback_params(fake.consent(ctx.connect.start(owner, handle, "SALESFORCE", "First")))
    second = callback_params(fake.consent(ctx.connect.start(owner, handle, "SALESFORCE", "Second")))
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(second | {"code": first["code"]}, handle, "127.0.0.1"))
    assert outcome is not None and not outcome.connected
    assert "invalid code verifier" in outcome.message  # PKCE binds the code to its own flow
    with ctx.factory() as session:
        assert session.scalars(select(Integration)).all() == []


def test_consent_declined_at_salesforce_changes_nothing(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "SALESFORCE", "Acme")))
    denied = {"state": params["state"], "error": "access_denied", "error_description": "end-user denied authorization"}
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(denied, handle, "127.0.0.1"))
    assert outcome is not None and not outcome.connected
    assert outcome.message == (
        "Salesforce did not grant access (access_denied: end-user denied authorization). Nothing was changed."
    )
    assert fake.exchanges == 0


def test_an_instance_url_that_is_not_salesforce_is_refused(ctx, fake, app, owner):
    fake.refresh["instance_url"] = "https://evil.example.com"
    handle = signed_in(ctx, owner)
    _, _, outcome_id = connect(ctx, fake, owner, handle, name="Acme")
    outcome = ctx.connect.outcome(owner, outcome_id)
    assert outcome is not None and not outcome.connected
    assert "not a Salesforce My Domain (evil.example.com)" in outcome.message
    with ctx.factory() as session:
        assert session.scalars(select(Integration)).all() == []


def test_reconnect_keeps_the_integration_and_replaces_only_the_tokens(ctx, fake, app, owner, audit_texts):
    handle = signed_in(ctx, owner)
    _, _, first = connect(ctx, fake, owner, handle, name="Acme")
    integration_id = ctx.connect.outcome(owner, first).integration_id
    with ctx.factory.begin() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(health=Health.NEEDS_RECONNECT.value, status="error")
        )
    before = ctx.integrations.get(owner, integration_id)
    fake.refresh["token"] = NEW_REFRESH_TOKEN
    _, _, second = connect(ctx, fake, owner, handle, integration_id=integration_id)
    outcome = ctx.connect.outcome(owner, second)
    assert outcome is not None and outcome.connected and outcome.integration_id == integration_id
    assert outcome.message.startswith("Reconnected Acme (Salesforce).")
    after = ctx.integrations.get(owner, integration_id)
    assert (after.id, after.name, after.created_at, after.status) == (
        integration_id,
        "Acme",
        before.created_at,
        "connected",
    )
    assert after.health != Health.NEEDS_RECONNECT.value
    assert plain_config(ctx, integration_id)["refreshToken"] == NEW_REFRESH_TOKEN
    with ctx.factory() as session:
        assert len(session.scalars(select(Integration)).all()) == 1
    assert any('"integration.reconnect"' in t and "refreshToken" in t for t in audit_texts())


def test_someone_elses_integration_cannot_be_reconnected(ctx, fake, app, owner, member):
    _, _, first = connect(ctx, fake, owner, signed_in(ctx, owner), name="Acme")
    integration_id = ctx.connect.outcome(owner, first).integration_id
    from core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        ctx.connect.start(member, signed_in(ctx, member), "SALESFORCE", integration_id=integration_id)


def test_a_customer_connects_salesforce_by_link(ctx, fake, app, owner, admin, audit_texts, assert_no_secret):
    assert_a_customer_connects_by_link(
        ctx,
        fake,
        admin,
        owner,
        "SALESFORCE",
        "Acme Salesforce",
        SECRETS,
        audit_texts,
        assert_no_secret,
    )
