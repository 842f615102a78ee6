"""The Salesforce provider against a fake Salesforce (My Domain token endpoint and instance) on 127.0.0.1.

The fake serves the My Domain host under /<host>/ (so a path shows which host was asked for a token)
and the org's instance under /instance, the instance_url its token answers name.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from werkzeug import Request, Response

from core.catalog import TestContext
from core.crypto import field_context, is_encrypted
from core.http import USER_AGENT, HttpPolicy, make_session
from core.models import AuditEvent, Integration
from core.tokens import MemoryTokens
from providers import salesforce
from tests.conftest import LOOPBACK_ALLOW
from tests.contract.helpers import requests_to

MY_DOMAIN = "https://acme.my.salesforce.com"
CLIENT_ID = "3MVG9consumer.key.0123456789abcdefABCDEF"
CLIENT_SECRET = "sf-secret-0123456789ABCDEF0123456789"
REFRESH_TOKEN = "5Aep861refresh.token.0123456789abcdef"
ROTATED_REFRESH_TOKEN = "5Aep861rotated.token.fedcba9876543210"
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQaccess.token.0123456789"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ROTATED_REFRESH_TOKEN, ACCESS_TOKEN)
SHIPPED_LOGIN_BASE = salesforce.LOGIN_BASE  # read at import, before any test points it at the fake
SHIPPED_INSTANCE_URL_PATTERN = salesforce.INSTANCE_URL_PATTERN
TOKEN_PATH = "/acme.my.salesforce.com/services/oauth2/token"
USERINFO_PATH = "/instance/services/oauth2/userinfo"
VERSIONS_PATH = "/instance/services/data/"
LIMITS_PATH = "/instance/services/data/v63.0/limits"
VERSIONS = [
    {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"},
    {"label": "Spring '25", "url": "/services/data/v63.0", "version": "63.0"},
    {"label": "Spring '07", "url": "/services/data/v9.0", "version": "9.0"},  # newest as text, oldest as number
]
USERINFO = {
    "sub": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
    "user_id": "005xx000001SwiUAAS",
    "organization_id": "00Dxx0000001gPLEAY",
    "preferred_username": "integration@acme.test",
    "email": "ops@acme.test",
    "name": "Integration User",
}
LIMITS = {
    "DailyApiRequests": {"Max": 15000, "Remaining": 14998},
    "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
}
USAGE_HEADER = {"Sforce-Limit-Info": "api-usage=2/15000"}


@pytest.fixture
def instance_url(httpserver) -> str:
    return f"http://{httpserver.host}:{httpserver.port}/instance"


@pytest.fixture(autouse=True)
def fake_salesforce(monkeypatch, httpserver):
    """The My Domain host becomes /<host>/ on the fake; the fake's /instance passes as a Salesforce host."""
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(salesforce, "LOGIN_BASE", base + "/{host}")
    monkeypatch.setattr(salesforce, "INSTANCE_URL_PATTERN", re.escape(base) + "/instance")
    return httpserver


def config(**changes) -> dict:
    values = {"instanceUrl": MY_DOMAIN, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
    values["refreshToken"] = REFRESH_TOKEN
    return {k: v for k, v in (values | changes).items() if v is not None}


def token_answer(instance_url: str, **changes) -> dict:
    return {
        "access_token": ACCESS_TOKEN,
        "signature": "c2lnbmF0dXJl",
        "scope": "refresh_token api",
        "instance_url": instance_url,
        "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
        "token_type": "Bearer",
        "issued_at": "1764200000000",
    } | changes


def sf_error(code: str, message: str = "refused") -> list:
    return [{"message": message, "errorCode": code}]


def token_endpoint(httpserver, body, status: int = 200) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(body, status=status)


def instance(httpserver, userinfo=(200, USERINFO), versions=(200, VERSIONS), limits=(200, LIMITS)) -> None:
    for path, (status, body) in ((USERINFO_PATH, userinfo), (VERSIONS_PATH, versions), (LIMITS_PATH, limits)):
        headers = USAGE_HEADER if path != USERINFO_PATH else {}
        httpserver.expect_request(path, method="GET").respond_with_json(body, status=status, headers=headers)


@pytest.fixture
def run(admin, unsaved_test):
    """Test a configuration (config() unless told) through the service; no secret may leak."""
    return lambda cfg=None: unsaved_test(admin, "SALESFORCE", cfg or config(), SECRETS)


# ----- production addresses ---------------------------------------------------------------------------


def test_the_token_endpoint_is_on_the_my_domain_host():
    assert SHIPPED_LOGIN_BASE.format(host="acme.my.salesforce.com") == MY_DOMAIN


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://acme.my.salesforce.com", True),
        ("https://acme--dev.sandbox.my.salesforce.com", True),
        ("https://na139.salesforce.com", True),
        ("https://acme.my.salesforce.mil", True),
        ("http://acme.my.salesforce.com", False),
        ("https://salesforce.com.evil.test", False),
        ("https://evil.test", False),
        ("https://acme.my.salesforce.com@evil.test", False),
    ],
)
def test_only_salesforce_hosts_receive_the_token(url, allowed):
    assert bool(re.fullmatch(SHIPPED_INSTANCE_URL_PATTERN, url)) is allowed


# ----- the flows --------------------------------------------------------------------------------------


def test_refresh_token_flow_shows_org_user_and_api_usage(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver)

    result = run()

    assert result.success, result.message
    assert result.message == (
        f"Connected to Salesforce org 00Dxx0000001gPLEAY ({instance_url}) as integration@acme.test, with the "
        "refresh-token flow. 14,998 of 15,000 daily API requests left. The token allows: refresh_token api."
    )
    assert result.details == {
        "flow": "refresh_token",
        "scope": "refresh_token api",
        "instanceUrl": instance_url,
        "organizationId": "00Dxx0000001gPLEAY",
        "user": {
            "id": "005xx000001SwiUAAS",
            "username": "integration@acme.test",
            "email": "ops@acme.test",
            "name": "Integration User",
        },
        "apiVersion": "63.0",
        "apiVersionListed": True,
        "dailyApiRequests": {"available": True, "max": 15000, "remaining": 14998},
        "apiUsage": {"used": 2, "limit": 15000},
    }
    (token_request,) = requests_to(httpserver, TOKEN_PATH)
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.headers["User-Agent"] == USER_AGENT  # sent by context.http, not a session of authlib's
    assert "Authorization" not in token_request.headers
    assert token_request.query_string == b""
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    for path in (USERINFO_PATH, LIMITS_PATH):
        (request,) = requests_to(httpserver, path)
        assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    (versions,) = requests_to(httpserver, VERSIONS_PATH)
    assert "Authorization" not in versions.headers  # needs no authentication, and is never the proof


def test_client_credentials_flow_without_a_refresh_token(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url, scope="api"))
    instance(httpserver)

    result = run(config(refreshToken=None))

    assert result.success, result.message
    assert "with the client-credentials flow" in result.message
    assert result.details["flow"] == "client_credentials"
    (token_request,) = requests_to(httpserver, TOKEN_PATH)
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }


def test_versions_that_cannot_be_listed_fall_back(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    httpserver.expect_request(USERINFO_PATH).respond_with_json(USERINFO)
    httpserver.expect_request(VERSIONS_PATH).respond_with_data("not here", status=404)
    httpserver.expect_request("/instance/services/data/v62.0/limits").respond_with_json(LIMITS)

    result = run()

    assert result.success, result.message
    assert (result.details["apiVersion"], result.details["apiVersionListed"]) == ("62.0", False)


# ----- token errors -----------------------------------------------------------------------------------


def test_invalid_grant_for_a_refresh_token(httpserver, run):
    token_endpoint(httpserver, {"error": "invalid_grant", "error_description": "expired access/refresh token"}, 400)

    result = run()

    assert not result.success
    assert result.message.startswith("Salesforce did not accept the refresh token (invalid_grant)")
    assert "Authorize the app again" in result.message
    assert result.details == {"stage": "token", "status": 400, "error": "invalid_grant", "flow": "refresh_token"}
    assert requests_to(httpserver, USERINFO_PATH) == []


def test_invalid_grant_for_client_credentials(httpserver, run):
    token_endpoint(
        httpserver, {"error": "invalid_grant", "error_description": "no client credentials user enabled"}, 400
    )

    result = run(config(refreshToken=None))

    assert "refused the client-credentials flow (no client credentials user enabled)" in result.message
    assert "Run As user" in result.message


def test_unknown_consumer_key(httpserver, run):
    token_endpoint(httpserver, {"error": "invalid_client_id", "error_description": "client identifier invalid"}, 400)

    result = run()

    assert "does not know this consumer key (invalid_client_id)" in result.message


def test_a_foreign_instance_never_receives_the_token(httpserver, run):
    token_endpoint(httpserver, token_answer("https://org.evil.test"))

    result = run()

    assert not result.success
    assert "not a Salesforce host (org.evil.test)" in result.message


def test_a_secret_echoed_by_the_token_endpoint_never_reaches_the_result(httpserver):
    token_endpoint(httpserver, {"error": "server_error", "error_description": f"bad secret {CLIENT_SECRET}"}, 400)
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    result = salesforce.test_connection(config(), TestContext(session, MemoryTokens()))

    assert result.message.startswith("Salesforce did not issue an access token (server_error: bad secret [redacted])")
    assert CLIENT_SECRET not in json.dumps(result.as_dict())


# ----- API errors -------------------------------------------------------------------------------------


def test_invalid_session(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver, userinfo=(401, sf_error("INVALID_SESSION_ID", "Session expired or invalid")))

    result = run()

    assert not result.success
    assert result.message.startswith("Salesforce rejected the session (INVALID_SESSION_ID)")
    assert result.details["errorCode"] == "INVALID_SESSION_ID"
    assert len(requests_to(httpserver, TOKEN_PATH)) == 1  # a new token was not fetched: it was not cached


def test_daily_limit_reached_on_the_limits_call_is_a_limit_not_a_permission(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    httpserver.expect_request(USERINFO_PATH).respond_with_json(USERINFO)
    httpserver.expect_request(VERSIONS_PATH).respond_with_json(VERSIONS)
    httpserver.expect_request(LIMITS_PATH).respond_with_json(
        sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        status=403,
        headers={"Sforce-Limit-Info": "api-usage=15000/15000"},
    )

    result = run()

    assert not result.success
    assert result.message.startswith(
        "Daily API limit reached for this Salesforce org (REQUEST_LIMIT_EXCEEDED, 15,000 of 15,000 requests used)."
    )
    assert "permission" not in result.message.lower()
    assert result.details["limitReached"] is True
    assert result.details["apiUsage"] == {"used": 15000, "limit": 15000}
    assert len(requests_to(httpserver, LIMITS_PATH)) == 1  # a 403 is not retried


def test_daily_limit_reached_on_userinfo(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver, userinfo=(403, sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")))

    result = run()

    assert result.message.startswith("Daily API limit reached for this Salesforce org (REQUEST_LIMIT_EXCEEDED).")
    assert result.details["limitReached"] is True


def test_a_real_permission_problem_is_called_one(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver, userinfo=(403, sf_error("API_DISABLED_FOR_ORG", "API is not enabled for this Organization")))

    result = run()

    assert "refused access (API_DISABLED_FOR_ORG: API is not enabled for this Organization)" in result.message
    assert "'API Enabled' permission" in result.message


def test_limits_hidden_from_the_user_do_not_fail_the_test(httpserver, run, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver, limits=(403, sf_error("INSUFFICIENT_ACCESS", "insufficient access rights on object id")))

    result = run()

    assert result.success, result.message
    assert result.details["dailyApiRequests"] == {
        "available": False,
        "reason": "the user lacks 'View Setup and Configuration' (403)",
    }
    assert "2 of 15,000 daily API requests used" in result.message  # from Sforce-Limit-Info instead


# ----- saved integrations: the cache and a rotated refresh token -------------------------------------------


def stored(ctx, integration_id: int) -> dict:
    with ctx.factory() as session:
        return session.get(Integration, integration_id).configuration


def test_two_tests_in_a_row_make_one_token_request(httpserver, ctx, admin, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    instance(httpserver)
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", config())

    first, second = ctx.integrations.test(admin, view.id), ctx.integrations.test(admin, view.id)

    assert first.success and second.success, (first.message, second.message)
    assert len(requests_to(httpserver, TOKEN_PATH)) == 1
    assert len(requests_to(httpserver, USERINFO_PATH)) == 2
    assert all(is_encrypted(stored(ctx, view.id)[k]) for k in ("clientSecret", "refreshToken"))


def test_a_rotated_refresh_token_replaces_the_stored_one(httpserver, ctx, admin, instance_url, audit_texts):
    token_endpoint(httpserver, token_answer(instance_url, refresh_token=ROTATED_REFRESH_TOKEN))
    instance(httpserver)
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", config())

    result = ctx.integrations.test(admin, view.id)

    assert result.success, result.message
    assert result.details["refreshTokenRotated"] is True
    assert "issued a new refresh token" in result.message
    saved = stored(ctx, view.id)["refreshToken"]
    assert is_encrypted(saved)
    assert ctx.cipher.decrypt(saved, field_context(view.id, "refreshToken")) == ROTATED_REFRESH_TOKEN
    assert any("integration.secret_rotated" in text for text in audit_texts())
    assert ctx.integrations.get(admin, view.id).version == view.version  # a rotation is not an edit
    with ctx.factory() as session:
        rotated = session.scalars(select(AuditEvent).where(AuditEvent.action == "integration.secret_rotated")).one()
    assert rotated.details == {"field": "refreshToken"}

    again = ctx.integrations.test(admin, view.id)  # the access token is cached under the new refresh token

    assert again.success
    assert len(requests_to(httpserver, TOKEN_PATH)) == 1


def test_a_cached_token_revoked_early_is_replaced_once(httpserver, ctx, admin, instance_url):
    token_endpoint(httpserver, token_answer(instance_url))
    httpserver.expect_request(VERSIONS_PATH).respond_with_json(VERSIONS)
    httpserver.expect_request(LIMITS_PATH).respond_with_json(LIMITS)
    answers = iter([(200, USERINFO), (401, sf_error("INVALID_SESSION_ID")), (200, USERINFO)])

    def userinfo(request: Request) -> Response:
        status, body = next(answers)
        return Response(json.dumps(body), status=status, content_type="application/json")

    httpserver.expect_request(USERINFO_PATH).respond_with_handler(userinfo)
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", config())

    first, second = ctx.integrations.test(admin, view.id), ctx.integrations.test(admin, view.id)

    assert first.success and second.success, second.message
    assert len(requests_to(httpserver, TOKEN_PATH)) == 2
    assert len(requests_to(httpserver, USERINFO_PATH)) == 3
