"""Connecting Pipedrive by consent against a fake oauth.pipedrive.com on 127.0.0.1: the client
authenticates with HTTP Basic at /oauth/token, and the token answer's api_domain names the company,
checked to be a pipedrive.com host before anything is sent there."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete

from core.models import OAuthToken
from providers import pipedrive
from tests.contract.connect_helpers import (
    assert_a_customer_connects_by_link,
    callback_params,
    plain_config,
    signed_in,
    use_public_base_url,
)
from tests.fakes.oauth_server import FakeAuthServer

CLIENT_ID = "b4c5d6e7f8a9pipedrive01"
CLIENT_SECRET = "pd-client-secret-0123456789abcdef0123456789"
REFRESH_TOKEN = "13714223:17029:pd-refresh-0123456789abcdef"
ACCESS_TOKEN = "13714223:17029:pd-access-fedcba9876543210"
ME = {"data": {"id": 17029, "name": "Ada", "email": "ada@acme.test", "company_name": "Acme", "company_domain": "acme"}}


@pytest.fixture
def fake(monkeypatch, httpserver, ctx):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(pipedrive, "OAUTH_BASE", base + "/pd-oauth")
    monkeypatch.setattr(pipedrive, "API_BASE", base + "/{domain}")
    answer = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "refresh_token": REFRESH_TOKEN,
        "scope": "base,deals:read",
        "expires_in": 3599,
        "api_domain": "https://acme.pipedrive.com",
    }
    server = FakeAuthServer(
        httpserver,
        "/pd-oauth/oauth/authorize",
        "/pd-oauth/oauth/token",
        CLIENT_ID,
        CLIENT_SECRET,
        answer=lambda grant: answer,
        refresh_answer=lambda token: answer,
        auth_method="client_secret_basic",
    ).install()
    server.answer_body = answer  # type: ignore[attr-defined]
    httpserver.expect_request(
        "/acme/api/v1/users/me", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}
    ).respond_with_json(ME)
    use_public_base_url(ctx)
    yield server
    assert server.violations == []


@pytest.fixture
def app(ctx, admin):
    return ctx.oauth_apps.save(admin, "PIPEDRIVE", CLIENT_ID, CLIENT_SECRET, "")


def consent(ctx, fake, owner):
    handle = signed_in(ctx, owner)
    url = ctx.connect.start(owner, handle, "PIPEDRIVE", "Deals")
    params = callback_params(fake.consent(url))
    return url, ctx.connect.outcome(owner, ctx.connect.complete(params, handle, "127.0.0.1"))


def test_connect_with_pipedrive_takes_the_company_from_api_domain(ctx, fake, app, owner):
    url, outcome = consent(ctx, fake, owner)
    assert "scope" not in parse_qs(urlsplit(url).query)  # scopes are the app's, set in Pipedrive
    assert outcome is not None and outcome.connected, outcome
    assert "Connected to Acme (acme.pipedrive.com) as Ada" in outcome.message
    assert plain_config(ctx, outcome.integration_id) == {
        "companyDomain": "acme",
        "authMode": "OAUTH",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }


@pytest.mark.parametrize(
    "api_domain", ["https://acme.pipedrive.com.evil.example", "http://acme.pipedrive.com", "https://evil.example"]
)
def test_an_api_domain_that_is_not_pipedrives_is_refused(ctx, fake, app, owner, api_domain):
    fake.answer_body["api_domain"] = api_domain
    _, outcome = consent(ctx, fake, owner)
    assert outcome is not None and not outcome.connected
    assert "not Pipedrive's" in outcome.message
    assert ctx.integrations.list_integrations(owner) == []


def test_a_customer_connects_pipedrive_by_link(ctx, fake, app, owner, admin, audit_texts, assert_no_secret):
    assert_a_customer_connects_by_link(
        ctx,
        fake,
        admin,
        owner,
        "PIPEDRIVE",
        "Acme Pipedrive",
        (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN),
        audit_texts,
        assert_no_secret,
    )


def test_a_refresh_token_pipedrive_no_longer_accepts_makes_the_integration_need_reconnecting(ctx, fake, app, owner):
    # Pipedrive drops a refresh token unused for 60 days (or revoked with the app): invalid_grant.
    _, outcome = consent(ctx, fake, owner)
    assert outcome is not None and outcome.connected
    fake.refresh_answer = lambda token: (
        400,
        {"success": False, "error": "invalid_grant", "error_description": "Invalid grant: refresh token is invalid"},
    )
    with ctx.factory.begin() as session:  # the cached access token has expired
        session.execute(delete(OAuthToken))
    result = ctx.integrations.test(owner, outcome.integration_id)
    assert not result.success and "Reconnect Pipedrive" in result.message, result.message
    assert REFRESH_TOKEN not in result.message and CLIENT_SECRET not in result.message
