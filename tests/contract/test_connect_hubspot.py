"""Connecting HubSpot by consent against a fake HubSpot on 127.0.0.1: app.hubspot.com/oauth/authorize
and POST /oauth/v1/token (client id and secret in the form body, a 30-minute access token and a refresh
token), then the account-details test with an access token the refresh token mints."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete
from werkzeug import Response

from core.crypto import is_encrypted
from core.errors import ValidationError
from core.integrations.health import Health
from core.models import Integration, OAuthToken
from providers import hubspot
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

CLIENT_ID = "5f0c3e5e-hubspot-client-0123456789ab"
CLIENT_SECRET = "hs-client-secret-0123456789abcdef0123"
REFRESH_TOKEN = "na1-refresh-0123-4567-89ab-cdef01234567"
ACCESS_TOKEN = "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4"
MINTED_TOKEN = "CKmintedHubSpotAccess0123456789abcdefABCDEF0123456789"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, MINTED_TOKEN)
DETAILS = {"portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern", "uiDomain": "app.hubspot.com"}


@pytest.fixture
def fake(monkeypatch, httpserver, ctx):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(hubspot, "API_BASE", base)
    monkeypatch.setattr(hubspot, "AUTHORIZE_URL", base + "/oauth/authorize")
    refreshed: list[str] = []
    revoked: set[str] = set()

    def refresh(token: str) -> dict | tuple[int, dict]:
        refreshed.append(token)
        if token in revoked:
            return 400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
        return {"token_type": "bearer", "access_token": MINTED_TOKEN, "refresh_token": token, "expires_in": 1800}

    server = FakeAuthServer(
        httpserver,
        "/oauth/authorize",
        hubspot.OAUTH_TOKEN_PATH,
        CLIENT_ID,
        CLIENT_SECRET,
        answer=lambda grant: {
            "token_type": "bearer",
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "expires_in": 1800,
        },
        refresh_answer=refresh,
        # HubSpot's refusals: {status, message, correlationId}, not RFC 6749's error field.
        error_shape=lambda error, text: (400, {"status": "BAD_AUTH_CODE", "message": text, "correlationId": "c-1"}),
    ).install()
    server.refreshed = refreshed  # type: ignore[attr-defined]
    server.revoked = revoked  # type: ignore[attr-defined]

    def details(request):
        ok = request.headers.get("Authorization") == f"Bearer {MINTED_TOKEN}"
        return Response(
            json.dumps(DETAILS if ok else {"status": "error"}), 200 if ok else 401, content_type="application/json"
        )

    httpserver.expect_request(hubspot.DETAILS_PATH).respond_with_handler(details)
    httpserver.expect_request(hubspot.USAGE_PATH).respond_with_json({"status": "error"}, status=403)
    use_public_base_url(ctx)
    yield server
    assert server.violations == []


@pytest.fixture
def app(ctx, admin):
    return ctx.oauth_apps.save(admin, "HUBSPOT", CLIENT_ID, CLIENT_SECRET, "")


def test_the_authorize_url_is_hubspots_with_the_default_scopes(ctx, fake, app, owner):
    url = ctx.connect.start(owner, signed_in(ctx, owner), "HUBSPOT", "Sales")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(hubspot.AUTHORIZE_URL + "?")
    assert query["redirect_uri"] == REDIRECT_URI and query["client_id"] == CLIENT_ID
    assert query["scope"].split() == list(hubspot.OAUTH.default_scopes)
    assert "code_challenge" not in query  # HubSpot does not document PKCE
    assert CLIENT_SECRET not in url


def test_connect_with_hubspot_stores_the_refresh_token_and_tests_with_a_minted_access_token(
    ctx, fake, app, owner, audit_texts, assert_no_secret
):
    handle = signed_in(ctx, owner)
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "HUBSPOT", "Sales")))
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(params, handle, "127.0.0.1"))
    assert outcome is not None and outcome.connected, outcome
    assert "Connected to HubSpot portal 62515" in outcome.message
    assert fake.refreshed == [REFRESH_TOKEN]
    assert plain_config(ctx, outcome.integration_id) == {
        "authMode": "OAUTH",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    with ctx.factory() as session:
        stored = session.get(Integration, outcome.integration_id).configuration
    assert is_encrypted(stored["refreshToken"])
    for secret in (*SECRETS, params["code"]):
        assert_no_secret(secret, outcome.message, *audit_texts(), stored_rows_text(ctx))
    # The next test reuses the cached access token.
    assert ctx.integrations.test(owner, outcome.integration_id).success
    assert fake.refreshed == [REFRESH_TOKEN]


def test_a_refused_code_is_reported_and_nothing_is_saved(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "HUBSPOT", "Sales")))
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(params | {"code": "code-unknown"}, handle, "x"))
    assert outcome is not None and not outcome.connected
    assert outcome.message.startswith("HubSpot did not exchange the authorization code for tokens (status 400)")
    assert ctx.integrations.list_integrations(owner) == []


def test_the_token_paste_form_still_works_for_a_private_app(ctx, owner):
    view = ctx.integrations.create(owner, "Pasted", "HUBSPOT", {"accessToken": "pat-na1-0123456789abcdef0123"})
    assert view.configuration["authMode"] == "PRIVATE_APP"
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(owner, "Empty", "HUBSPOT", {"authMode": "OAUTH"})
    assert set(refused.value.errors) == {"clientId", "clientSecret", "refreshToken"}


def test_a_revoked_refresh_token_makes_the_integration_need_reconnecting(ctx, fake, app, owner):
    handle = signed_in(ctx, owner)
    params = callback_params(fake.consent(ctx.connect.start(owner, handle, "HUBSPOT", "Sales")))
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(params, handle, "127.0.0.1"))
    assert outcome is not None and outcome.connected
    fake.revoked.add(REFRESH_TOKEN)
    with ctx.factory.begin() as session:  # the cached access token has expired
        session.execute(delete(OAuthToken))
    result = ctx.integrations.test(owner, outcome.integration_id)
    assert not result.success and "Reconnect HubSpot" in result.message
    view = ctx.integrations.get(owner, outcome.integration_id)
    assert view.health == Health.NEEDS_RECONNECT.value


def test_a_customer_connects_hubspot_by_link(ctx, fake, app, owner, admin, audit_texts, assert_no_secret):
    assert_a_customer_connects_by_link(
        ctx,
        fake,
        admin,
        owner,
        "HUBSPOT",
        "Acme HubSpot",
        SECRETS,
        audit_texts,
        assert_no_secret,
    )
