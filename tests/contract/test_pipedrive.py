"""The Pipedrive provider against a fake Pipedrive API (pytest-httpserver on 127.0.0.1).

The fake serves every company under /<company domain>/, so a request's path shows which company host
the provider would have called.
"""

from __future__ import annotations

import pytest

from core.catalog import TestContext
from core.http import HttpPolicy, make_session
from core.tokens import MemoryTokens
from providers import pipedrive
from tests.conftest import LOOPBACK_ALLOW

TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SHIPPED_API_BASE = pipedrive.API_BASE  # read at import, before any test points it at the fake
ME = "/acme/api/v1/users/me"
USER = {
    "id": 777,
    "name": "Ada Lovelace",
    "email": "ada@acme.test",
    "company_id": 5150,
    "company_name": "Acme Ltd",
    "company_domain": "acme",
    "locale": "en_GB",
    "timezone_name": "Europe/London",
    "is_admin": 1,
    "active_flag": True,
}
LIMITS = {"x-ratelimit-limit": "80", "x-ratelimit-remaining": "79", "x-ratelimit-reset": "2"}


@pytest.fixture(autouse=True)
def fake_pipedrive(monkeypatch, httpserver):
    """https://{domain}.pipedrive.com becomes http://127.0.0.1:port/{domain} for these tests."""
    monkeypatch.setattr(pipedrive, "API_BASE", f"http://{httpserver.host}:{httpserver.port}/{{domain}}")
    return httpserver


@pytest.fixture
def run(admin, unsaved_test):
    """Test a company domain and API token through the service; the token may not leak."""

    def test(domain: str = "acme", token: str = TOKEN):
        return unsaved_test(admin, "PIPEDRIVE", {"companyDomain": domain, "apiToken": token}, [token])

    return test


def calls(httpserver):
    return [request for request, _ in httpserver.log]


def pipedrive_error(httpserver, status: int, error: str, headers: dict | None = None) -> None:
    httpserver.expect_request(ME).respond_with_json(
        {"success": False, "error": error, "errorCode": status, "error_info": "Please check developers.pipedrive.com"},
        status=status,
        headers=headers or {},
    )


def test_production_host_is_the_companys_pipedrive_host():
    assert SHIPPED_API_BASE.format(domain="acme") == "https://acme.pipedrive.com"


def test_connects_as_the_user_with_the_token_in_a_header_only(httpserver, run):
    httpserver.expect_request(ME, method="GET").respond_with_json({"success": True, "data": USER}, headers=LIMITS)

    result = run()

    assert result.success, result.message
    assert result.message == (
        "Connected to Acme Ltd (acme.pipedrive.com) as Ada Lovelace <ada@acme.test>, an admin. "
        "79 requests left in the current rate-limit window."
    )
    assert result.details == {
        "user": {
            "id": 777,
            "name": "Ada Lovelace",
            "email": "ada@acme.test",
            "isAdmin": True,
            "locale": "en_GB",
            "timezone": "Europe/London",
        },
        "company": {"id": 5150, "name": "Acme Ltd", "domain": "acme"},
        "rateLimit": {"limit": "80", "remaining": "79", "reset": "2"},
    }
    (request,) = calls(httpserver)
    assert request.path == ME
    assert request.headers["x-api-token"] == TOKEN
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.query_string == b""  # never ?api_token=
    assert "api_token" not in request.url and TOKEN not in request.url


def test_a_regular_user_is_reported_as_such(httpserver, run):
    httpserver.expect_request(ME).respond_with_json({"success": True, "data": USER | {"is_admin": 0}})

    result = run()

    assert result.success
    assert "a regular user" in result.message
    assert result.details["user"]["isAdmin"] is False


def test_the_domain_is_normalised_and_used_as_the_host(httpserver, run):
    httpserver.expect_request("/acme-eu/api/v1/users/me").respond_with_json(
        {"success": True, "data": USER | {"company_domain": "acme-eu"}}
    )

    result = run(domain="  Acme-EU ")

    assert result.success, result.message
    assert [r.path for r in calls(httpserver)] == ["/acme-eu/api/v1/users/me"]


def test_a_token_of_another_company_is_refused_plainly(httpserver, run):
    httpserver.expect_request(ME).respond_with_json(
        {"success": True, "data": USER | {"company_domain": "globex", "company_name": "Globex"}}
    )

    result = run()

    assert not result.success
    assert "belongs to Globex (globex.pipedrive.com), not acme.pipedrive.com" in result.message
    assert "Enter globex as the company domain" in result.message


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, "unauthorized access", "Pipedrive refused the API token (401)"),
        (402, "Company account is not open", "at acme.pipedrive.com is not open (402: payment required)"),
        (403, "You do not have permissions", "refused access (403: You do not have permissions)"),
        (404, "Not found", "no API at acme.pipedrive.com (404)"),
    ],
)
def test_documented_errors(httpserver, run, status, error, expected):
    pipedrive_error(httpserver, status, error)

    result = run()

    assert not result.success
    assert expected in result.message
    assert result.error == result.message
    assert result.details["status"] == status
    assert len(calls(httpserver)) == 1


def test_rate_limited_reads_the_ratelimit_headers(httpserver, run):
    pipedrive_error(
        httpserver,
        429,
        "Request over limit",
        {"x-ratelimit-limit": "80", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"},
    )

    result = run()

    assert not result.success
    assert result.message == "Pipedrive is rate limiting this token (limit 80 per window). Try again in a moment."
    assert result.details == {"status": 429, "rateLimit": {"limit": "80", "remaining": "0", "reset": "1"}}
    assert len(calls(httpserver)) == 2  # retried once by the session


def test_rate_limit_wait_uses_the_reset_header(httpserver):
    pipedrive_error(httpserver, 429, "Request over limit", {"x-ratelimit-limit": "80", "x-ratelimit-reset": "7"})
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    result = pipedrive.test_connection(
        {"companyDomain": "acme", "apiToken": TOKEN}, TestContext(session, MemoryTokens())
    )

    assert result.message.endswith("Wait 7 seconds and try again.")


def test_server_error(httpserver, run):
    httpserver.expect_request(ME).respond_with_data("bad gateway", status=502)

    result = run()

    assert result.message == "Pipedrive is unavailable (502). Try again later."


def test_an_answer_that_is_not_a_user(httpserver, run):
    httpserver.expect_request(ME).respond_with_json({"success": True, "data": None})

    result = run()

    assert not result.success
    assert "not with a Pipedrive user" in result.message


def test_a_token_echoed_by_the_server_never_reaches_the_result(httpserver):
    pipedrive_error(httpserver, 403, f"token {TOKEN} lacks permission")
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    result = pipedrive.test_connection(
        {"companyDomain": "acme", "apiToken": TOKEN}, TestContext(session, MemoryTokens())
    )

    assert TOKEN not in str(result.as_dict())
    assert "token [redacted] lacks permission" in result.message


def test_saved_integration(httpserver, ctx, admin):
    httpserver.expect_request(ME).respond_with_json({"success": True, "data": USER})
    view = ctx.integrations.create(admin, "Pipedrive", "PIPEDRIVE", {"companyDomain": "acme", "apiToken": TOKEN})

    result = ctx.integrations.test(admin, view.id)

    assert result.success, result.message
    assert calls(httpserver)[0].headers["x-api-token"] == TOKEN  # decrypted for the call only
    assert ctx.integrations.get(admin, view.id).status == "connected"
