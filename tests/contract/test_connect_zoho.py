"""Connecting Zoho CRM by consent against a fake Zoho accounts server on 127.0.0.1: consent at
accounts.zoho.com/oauth/v2/auth with access_type=offline, the callback naming the person's own data
centre (location, accounts-server), the code exchanged there; Zoho refuses inside an HTTP 200."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from providers import zoho
from tests.contract.connect_helpers import (
    assert_a_customer_connects_by_link,
    callback_params,
    plain_config,
    signed_in,
    use_public_base_url,
)
from tests.fakes.oauth_server import FakeAuthServer

CLIENT_ID = "1000.CONSOLEAPP0123456789ABCDEFGHIJ"
CLIENT_SECRET = "zoho-app-secret-0123456789abcdef0123456789"
REFRESH_TOKEN = "1000.consent.refresh.0f1e2d3c4b5a6978"
ACCESS_TOKEN = "1000.consent.access.aa11bb22cc33dd44"


@pytest.fixture
def fake(monkeypatch, httpserver, ctx):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(zoho, "ACCOUNTS_BASE", base + "/{host}")
    monkeypatch.setattr(zoho, "API_DOMAIN_PATTERN", re.escape(base) + "/zohoapis")
    answer = {
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "api_domain": base + "/zohoapis",
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    server = FakeAuthServer(
        httpserver,
        "/accounts.zoho.com/oauth/v2/auth",
        "/accounts.zoho.eu/oauth/v2/token",  # the person's account lives in the EU data centre
        CLIENT_ID,
        CLIENT_SECRET,
        answer=lambda grant: answer,
        refresh_answer=lambda token: {k: v for k, v in answer.items() if k != "refresh_token"},
        required_params={"access_type": "offline"},
        callback_extra={"location": "eu", "accounts-server": "https://accounts.zoho.eu"},
        error_shape=lambda error, text: (200, {"error": "invalid_code" if error == "invalid_grant" else error}),
    ).install()
    server.answer_body = answer  # type: ignore[attr-defined]
    httpserver.expect_request("/zohoapis/crm/v2/org").respond_with_json(
        {"org": [{"id": "2853142000000131027", "company_name": "Acme Widgets", "time_zone": "Europe/Berlin"}]}
    )
    use_public_base_url(ctx)
    yield server
    assert server.violations == []


@pytest.fixture
def app(ctx, admin):
    return ctx.oauth_apps.save(admin, "ZOHO", CLIENT_ID, CLIENT_SECRET, "")


def consent(ctx, fake, owner, **changes):
    handle = signed_in(ctx, owner)
    url = ctx.connect.start(owner, handle, "ZOHO", "Zoho EU")
    params = callback_params(fake.consent(url)) | changes
    return url, ctx.connect.outcome(owner, ctx.connect.complete(params, handle, "127.0.0.1"))


def test_consent_asks_for_offline_access_and_the_code_goes_to_the_named_data_centre(ctx, fake, app, owner):
    url, outcome = consent(ctx, fake, owner)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert query["scope"] == "ZohoCRM.org.READ,ZohoCRM.modules.ALL,ZohoCRM.settings.READ"  # Zoho's commas
    assert outcome is not None and outcome.connected, outcome
    assert plain_config(ctx, outcome.integration_id) == {
        "dataCentre": "eu",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    assert "Acme Widgets" in outcome.message and ACCESS_TOKEN not in outcome.message


@pytest.mark.parametrize(
    "named",
    [
        "https://accounts.evil.example",
        "http://accounts.zoho.eu",
        "https://accounts.zoho.eu.evil.example",
        "https://accounts.zoho.eu:8443",
    ],
)
def test_an_accounts_server_that_is_not_zohos_never_receives_the_code(ctx, fake, app, owner, named):
    _, outcome = consent(ctx, fake, owner, **{"accounts-server": named})
    assert outcome is not None and not outcome.connected
    assert "accounts server that is not Zoho's" in outcome.message
    assert fake.exchanges == 0
    assert ctx.integrations.list_integrations(owner) == []


def test_an_api_domain_that_is_not_zohos_is_refused(ctx, fake, app, owner):
    fake.answer_body["api_domain"] = "https://www.zohoapis.evil.example"
    _, outcome = consent(ctx, fake, owner)
    assert outcome is not None and not outcome.connected
    assert "API domain that is not Zoho's" in outcome.message


def test_zohos_error_inside_a_200_is_a_refusal(ctx, fake, app, owner):
    _, outcome = consent(ctx, fake, owner, code="code-never-issued")
    assert outcome is not None and not outcome.connected
    assert "(invalid_code)" in outcome.message
    assert ctx.integrations.list_integrations(owner) == []


def test_a_customer_connects_zoho_by_link(ctx, fake, app, owner, admin, audit_texts, assert_no_secret):
    assert_a_customer_connects_by_link(
        ctx,
        fake,
        admin,
        owner,
        "ZOHO",
        "Acme Zoho",
        (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN),
        audit_texts,
        assert_no_secret,
    )
