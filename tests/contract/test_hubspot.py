"""The HubSpot provider against a fake HubSpot API (pytest-httpserver on 127.0.0.1)."""

from __future__ import annotations

import re

import pytest

from core.catalog import TestContext
from core.crypto import is_encrypted
from core.http import HttpPolicy, make_session
from core.models import Integration
from core.tokens import MemoryTokens
from providers import hubspot
from tests.conftest import LOOPBACK_ALLOW
from tests.contract.helpers import requests_to

TOKEN = "pat-na1-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
DETAILS = {
    "portalId": 4242424,
    "accountType": "STANDARD",
    "timeZone": "Europe/Berlin",
    "companyCurrency": "EUR",
    "additionalCurrencies": [],
    "utcOffset": "+01:00",
    "utcOffsetMilliseconds": 3600000,
    "uiDomain": "app-eu1.hubspot.com",
    "dataHostingLocation": "eu1",
}
SHIPPED_API_BASE = hubspot.API_BASE  # read at import, before any test points it at the fake
USAGE = {
    "results": [
        {
            "name": "private-apps-api-calls-daily",
            "usageLimit": 500000,
            "currentUsage": 1234,
            "collectedAt": "2026-11-26T10:00:00Z",
            "fetchStatus": "SUCCESS",
            "resetsAt": "2026-11-27T00:00:00Z",
        }
    ]
}


@pytest.fixture(autouse=True)
def fake_hubspot(monkeypatch, httpserver):
    """The provider's fixed host, api.hubapi.com, points at the local fake for these tests."""
    monkeypatch.setattr(hubspot, "API_BASE", f"http://{httpserver.host}:{httpserver.port}")
    return httpserver


@pytest.fixture
def run(admin, unsaved_test):
    """Test a private app token through the service; the token may not leak."""
    return lambda token=TOKEN: unsaved_test(admin, "HUBSPOT", {"accessToken": token}, [token])


def test_production_host_is_hubspots():
    assert SHIPPED_API_BASE == "https://api.hubapi.com"


def test_connects_and_shows_the_portal_and_daily_usage(httpserver, run):
    httpserver.expect_request("/account-info/v3/details", method="GET").respond_with_json(
        DETAILS, headers={"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "189"}
    )
    httpserver.expect_request("/account-info/v3/api-usage/daily/private-apps", method="GET").respond_with_json(USAGE)

    result = run()

    assert result.success, result.message
    assert result.message == (
        "Connected to HubSpot portal 4242424 at app-eu1.hubspot.com (standard account, data hosted in eu1, "
        "time zone Europe/Berlin, currency EUR). 498,766 of 500,000 daily API calls left."
    )
    assert result.details["account"] == {
        "portalId": 4242424,
        "accountType": "STANDARD",
        "timeZone": "Europe/Berlin",
        "companyCurrency": "EUR",
        "dataHostingLocation": "eu1",
        "uiDomain": "app-eu1.hubspot.com",
    }
    assert result.details["dailyApiUsage"] == {
        "available": True,
        "name": "private-apps-api-calls-daily",
        "used": 1234,
        "limit": 500000,
        "remaining": 498766,
        "resetsAt": "2026-11-27T00:00:00Z",
    }
    assert result.details["rateLimit"] == {"limit": "190", "remaining": "189"}
    for path in ("/account-info/v3/details", "/account-info/v3/api-usage/daily/private-apps"):
        (request,) = requests_to(httpserver, path)
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/json"
        assert request.query_string == b""
        assert TOKEN not in request.url


def test_usage_that_cannot_be_read_does_not_fail_the_test(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(DETAILS)
    httpserver.expect_request("/account-info/v3/api-usage/daily/private-apps").respond_with_json(
        {
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "category": "MISSING_SCOPES",
            "errors": [{"context": {"requiredGranularScopes": ["account-info.security.read"]}}],
        },
        status=403,
    )

    result = run()

    assert result.success, result.message
    assert result.message.endswith("Daily API usage is not visible to this token.")
    assert result.details["dailyApiUsage"] == {
        "available": False,
        "reason": "not readable with this token (403); it needs account-info.security.read",
    }


def test_invalid_token(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {
            "status": "error",
            "message": "Authentication credentials not found.",
            "correlationId": "c0ffee",
            "category": "INVALID_AUTHENTICATION",
        },
        status=401,
    )

    result = run()

    assert not result.success
    assert result.message.startswith("HubSpot refused the access token (401)")
    assert "Private apps" in result.message
    assert result.error == result.message
    assert result.details == {"status": 401}
    assert requests_to(httpserver, "/account-info/v3/api-usage/daily/private-apps") == []


def test_missing_scopes_are_named(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call.",
            "correlationId": "c0ffee",
            "category": "MISSING_SCOPES",
            "errors": [
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": ["crm.objects.contacts.read", "oauth"]},
                }
            ],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
        },
        status=403,
    )

    result = run()

    assert not result.success
    assert "lacks a scope this check needs (it needs crm.objects.contacts.read, oauth)" in result.message
    assert "Scopes tab" in result.message
    assert result.details == {"status": 403, "missingScopes": ["crm.objects.contacts.read", "oauth"]}


def test_missing_scopes_without_a_list_repeat_hubspots_words(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "message": "Requires scope oauth.", "category": "MISSING_SCOPES"}, status=403
    )

    result = run()

    assert not result.success
    assert "lacks a scope this check needs (Requires scope oauth.)" in result.message
    assert result.details == {"status": 403}


def test_other_403_is_not_called_a_scope_problem(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "message": "The portal is locked.", "category": "FORBIDDEN"}, status=403
    )

    result = run()

    assert result.message.startswith("HubSpot refused access (403: The portal is locked.)")
    assert "scope" not in result.message


def test_rate_limited_is_retried_once_then_says_when_to_try_again(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "category": "RATE_LIMITS"},
        status=429,
        headers={"Retry-After": "1"},
    )

    result = run()

    assert not result.success
    assert result.message == "HubSpot is rate limiting this app (429, RATE_LIMITS). Try again in a moment."
    assert len(requests_to(httpserver, "/account-info/v3/details")) == 2  # the session retried once


def test_rate_limit_wait_comes_from_retry_after(httpserver):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "category": "RATE_LIMITS"}, status=429, headers={"Retry-After": "30"}
    )
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, connect_timeout=2, read_timeout=2, max_retries=0))

    result = hubspot.test_connection({"accessToken": TOKEN}, TestContext(session, MemoryTokens()))

    assert result.message == "HubSpot is rate limiting this app (429, RATE_LIMITS). Wait 30 seconds and try again."


def test_daily_limit_reached(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "message": "You have reached your daily limit.", "policyName": "DAILY"},
        status=429,
        headers={"Retry-After": "0"},
    )

    result = run()

    assert not result.success
    assert "used its daily API allowance" in result.message
    assert "midnight in the account's time zone" in result.message


def test_server_error(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_data("oops", status=503)

    result = run()

    assert result.message.startswith("HubSpot is unavailable (503)")
    assert len(requests_to(httpserver, "/account-info/v3/details")) == 2


def test_an_answer_that_is_not_account_details(httpserver, run):
    httpserver.expect_request("/account-info/v3/details").respond_with_data("<html>login</html>")

    result = run()

    assert not result.success
    assert "not with account details" in result.message


def test_unreachable_host(monkeypatch, run, closed_port):
    monkeypatch.setattr(hubspot, "API_BASE", f"http://127.0.0.1:{closed_port}")

    result = run()

    assert not result.success
    assert "HubSpot refused the connection" in result.message


def test_a_token_echoed_by_the_server_never_reaches_the_result(httpserver):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(
        {"status": "error", "message": f"Token {TOKEN} is not allowed here", "category": "FORBIDDEN"}, status=403
    )
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    result = hubspot.test_connection({"accessToken": TOKEN}, TestContext(session, MemoryTokens()))

    assert TOKEN not in str(result.as_dict())
    assert "Token [redacted] is not allowed here" in result.message


def test_saved_integration_stores_the_token_encrypted_and_records_the_outcome(httpserver, ctx, admin):
    httpserver.expect_request("/account-info/v3/details").respond_with_json(DETAILS)
    httpserver.expect_request("/account-info/v3/api-usage/daily/private-apps").respond_with_json(USAGE)
    view = ctx.integrations.create(admin, "Sales HubSpot", "HUBSPOT", {"accessToken": TOKEN})

    result = ctx.integrations.test(admin, view.id)

    assert result.success, result.message
    with ctx.factory() as session:
        stored = session.get(Integration, view.id).configuration["accessToken"]
    assert is_encrypted(stored) and TOKEN not in stored
    after = ctx.integrations.get(admin, view.id)
    assert (after.status, after.status_message) == ("connected", result.message)


def test_the_loopback_guard_stops_a_request_for_the_real_host(monkeypatch, loopback_only):
    monkeypatch.setattr(hubspot, "API_BASE", SHIPPED_API_BASE)
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    with pytest.raises(pytest.fail.Exception, match=re.escape("tried to leave 127.0.0.1: GET https://api.hubapi.com/")):
        hubspot.test_connection({"accessToken": TOKEN}, TestContext(session, MemoryTokens()))

    assert loopback_only == ["https://api.hubapi.com/account-info/v3/details"]
    loopback_only.clear()  # caught on purpose; anything else escaping still fails at teardown
