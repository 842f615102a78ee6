"""The Zoho CRM provider against a fake Zoho (accounts server and CRM API) on 127.0.0.1.

The fake serves each accounts host under /<host>/ (so a path shows which data centre's accounts server
was asked) and the CRM API under /zohoapis, the api_domain its token answers name.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from werkzeug import Request, Response

from core.catalog import TestContext
from core.crypto import is_encrypted
from core.http import USER_AGENT, HttpPolicy, make_session
from core.models import Integration, OAuthToken
from core.tokens import MemoryTokens
from providers import zoho
from tests.conftest import LOOPBACK_ALLOW

CLIENT_ID = "1000.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
CLIENT_SECRET = "zs-0123456789abcdef0123456789abcdef01234567"
REFRESH_TOKEN = "1000.refresh.0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ACCESS_TOKEN = "1000.access.aa11bb22cc33dd44ee55ff6677889900"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN)
SHIPPED_ACCOUNTS_BASE = zoho.ACCOUNTS_BASE  # read at import, before any test points it at the fake
SHIPPED_API_DOMAIN_PATTERN = zoho.API_DOMAIN_PATTERN
TOKEN_PATH = "/accounts.zoho.com/oauth/v2/token"
ORG_PATH = "/zohoapis/crm/v2/org"
ORG = {
    "org": [
        {
            "id": "2853142000000131027",
            "company_name": "Acme Widgets",
            "primary_email": "owner@acme.test",
            "time_zone": "Europe/Berlin",
            "currency": "Euro",
            "iso_code": "EUR",
            "country_code": "DE",
            "license_details": {
                "paid_expiry": "2027-01-01T00:00:00+01:00",
                "users_license_purchased": 10,
                "trial_type": None,
                "trial_expiry": None,
                "paid": True,
                "paid_type": "enterprise",
            },
        }
    ]
}


@pytest.fixture
def api_domain(httpserver) -> str:
    return f"http://{httpserver.host}:{httpserver.port}/zohoapis"


@pytest.fixture(autouse=True)
def fake_zoho(monkeypatch, httpserver):
    """accounts.zoho.{dc} becomes /<host>/ on the fake; the fake's /zohoapis passes as a Zoho API host."""
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(zoho, "ACCOUNTS_BASE", base + "/{host}")
    monkeypatch.setattr(zoho, "API_DOMAIN_PATTERN", re.escape(base) + "/zohoapis")
    return httpserver


def config(dc: str = "com", **changes) -> dict:
    return {
        "dataCentre": dc,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    } | changes


def token_answer(api_domain: str, **changes) -> dict:
    return {
        "access_token": ACCESS_TOKEN,
        "scope": "ZohoCRM.org.READ ZohoCRM.modules.ALL",
        "api_domain": api_domain,
        "token_type": "Bearer",
        "expires_in": 3600,
    } | changes


def token_endpoint(httpserver, body: dict, status: int = 200, path: str = TOKEN_PATH) -> None:
    httpserver.expect_request(path, method="POST").respond_with_json(body, status=status)


def token_requests(httpserver):
    return [request for request, _ in httpserver.log if request.path.endswith("/oauth/v2/token")]


def org_requests(httpserver):
    return [request for request, _ in httpserver.log if request.path == ORG_PATH]


@pytest.fixture
def run(admin, unsaved_test):
    """Test a configuration (config() unless told) through the service; no secret may leak."""
    return lambda cfg=None: unsaved_test(admin, "ZOHO", cfg or config(), SECRETS)


# ----- production addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dc", "host"),
    [
        ("com", "accounts.zoho.com"),
        ("eu", "accounts.zoho.eu"),
        ("in", "accounts.zoho.in"),
        ("com.au", "accounts.zoho.com.au"),
        ("jp", "accounts.zoho.jp"),
        ("com.cn", "accounts.zoho.com.cn"),
        ("zohocloud.ca", "accounts.zohocloud.ca"),
        ("sa", "accounts.zoho.sa"),
    ],
)
def test_each_data_centre_has_its_accounts_host(dc, host):
    assert SHIPPED_ACCOUNTS_BASE.format(host=zoho.ACCOUNTS_HOSTS[dc]) == f"https://{host}"
    assert set(zoho.ACCOUNTS_HOSTS) == set(zoho.DATA_CENTRES) == set(zoho.PROVIDER.field("dataCentre").options)


@pytest.mark.parametrize(
    ("domain", "allowed"),
    [
        ("https://www.zohoapis.com", True),
        ("https://www.zohoapis.eu", True),
        ("https://www.zohoapis.com.au", True),
        ("https://www.zohoapis.ca", True),
        ("https://zohoapis.in", True),
        ("http://www.zohoapis.com", False),
        ("https://www.zohoapis.com.evil.test/x", False),
        ("https://evil.test", False),
        ("https://zohoapis.com@evil.test", False),
    ],
)
def test_only_zoho_api_hosts_receive_the_token(domain, allowed):
    assert bool(re.fullmatch(SHIPPED_API_DOMAIN_PATTERN, domain)) is allowed


# ----- the token flow ---------------------------------------------------------------------------------


def test_connects_and_shows_the_organisation(httpserver, run, api_domain):
    token_endpoint(httpserver, token_answer(api_domain))
    httpserver.expect_request(ORG_PATH, method="GET").respond_with_json(ORG)

    result = run()

    assert result.success, result.message
    assert result.message == (
        "Connected to Zoho CRM organisation Acme Widgets (id 2853142000000131027, enterprise edition, "
        "Europe/Berlin, Euro). The token allows: ZohoCRM.org.READ ZohoCRM.modules.ALL."
    )
    assert result.details["organization"] == {
        "id": "2853142000000131027",
        "companyName": "Acme Widgets",
        "primaryEmail": "owner@acme.test",
        "timeZone": "Europe/Berlin",
        "currency": "Euro",
        "countryCode": "DE",
        "edition": "enterprise",
        "paid": True,
        "usersLicensed": 10,
        "trialExpiry": None,
    }
    assert result.details["token"] == {
        "scope": "ZohoCRM.org.READ ZohoCRM.modules.ALL",
        "apiDomain": api_domain,
        "cached": False,
    }
    (token_request,) = token_requests(httpserver)
    assert token_request.path == TOKEN_PATH
    assert token_request.headers["User-Agent"] == USER_AGENT  # sent by context.http, not a session of authlib's
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in token_request.headers
    assert token_request.query_string == b""  # the secrets travel in the body, not the URL
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    (org_request,) = org_requests(httpserver)
    assert org_request.headers["Authorization"] == f"Zoho-oauthtoken {ACCESS_TOKEN}"


@pytest.mark.parametrize(("dc", "host"), [("eu", "accounts.zoho.eu"), ("zohocloud.ca", "accounts.zohocloud.ca")])
def test_the_data_centre_picks_the_accounts_host(httpserver, run, api_domain, dc, host):
    token_endpoint(httpserver, token_answer(api_domain), path=f"/{host}/oauth/v2/token")
    httpserver.expect_request(ORG_PATH).respond_with_json(ORG)

    result = run(config(dc))

    assert result.success, result.message
    assert [r.path for r in token_requests(httpserver)] == [f"/{host}/oauth/v2/token"]


def test_an_error_inside_a_200_token_answer_is_a_failure(httpserver, run):
    token_endpoint(httpserver, {"error": "invalid_code"}, status=200)

    result = run()

    assert not result.success
    assert result.message.startswith("Zoho did not accept the refresh token (invalid_code).")
    assert "another data centre than com" in result.message
    assert result.details == {"stage": "token", "status": 200, "error": "invalid_code"}
    assert org_requests(httpserver) == []


def test_unknown_client(httpserver, run):
    token_endpoint(httpserver, {"error": "invalid_client"}, status=200)

    result = run()

    assert "does not know this client ID in the com data centre (invalid_client)" in result.message


def test_too_many_refreshes(httpserver, run):
    token_endpoint(
        httpserver,
        {
            "error_description": "You have made too many requests continuously. Please try again after some time.",
            "error": "Access Denied",
            "status": "failure",
        },
        status=400,
    )

    result = run()

    assert "at most 10 per 10 minutes" in result.message
    assert "Wait ten minutes" in result.message


def test_accounts_server_down_is_not_retried(httpserver, run):
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_data("down", status=503)

    result = run()

    assert result.message == "Zoho's accounts server is unavailable (503). Try again later."
    assert len(token_requests(httpserver)) == 1


def test_an_answer_without_an_access_token(httpserver, run, api_domain):
    token_endpoint(httpserver, {"api_domain": api_domain, "token_type": "Bearer"})

    result = run()

    assert not result.success
    assert result.message.startswith("Zoho did not issue an access token (status 200).")


def test_a_foreign_api_domain_never_receives_the_token(httpserver, run):
    token_endpoint(httpserver, token_answer("https://crm.evil.test"))

    result = run()

    assert not result.success
    assert "not a Zoho API host (crm.evil.test)" in result.message
    assert org_requests(httpserver) == []


def test_a_secret_echoed_by_the_token_endpoint_never_reaches_the_result(httpserver):
    token_endpoint(httpserver, {"error": "invalid_client_secret", "error_description": f"bad {CLIENT_SECRET}"}, 400)
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))

    result = zoho.test_connection(config(), TestContext(session, MemoryTokens()))

    assert CLIENT_SECRET not in json.dumps(result.as_dict())
    assert result.message.startswith("Zoho did not accept the client secret")


# ----- CRM API errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "INVALID_TOKEN", "Zoho rejected the access token (INVALID_TOKEN)"),
        (401, "AUTHENTICATION_FAILURE", "could not authenticate the request (AUTHENTICATION_FAILURE)"),
        (401, "OAUTH_SCOPE_MISMATCH", "lacks the scope to read the organisation (OAUTH_SCOPE_MISMATCH)"),
        (403, "NO_PERMISSION", "may not read the organisation (NO_PERMISSION)"),
    ],
)
def test_documented_api_errors(httpserver, run, api_domain, status, code, expected):
    token_endpoint(httpserver, token_answer(api_domain, scope="ZohoCRM.modules.ALL"))
    httpserver.expect_request(ORG_PATH).respond_with_json(
        {"code": code, "details": {}, "message": "refused", "status": "error"}, status=status
    )

    result = run()

    assert not result.success
    assert expected in result.message
    assert result.details["status"] == status
    assert result.details["code"] == code
    assert len(token_requests(httpserver)) == 1  # a fresh token is not fetched again
    if code == "OAUTH_SCOPE_MISMATCH":
        assert "ZohoCRM.org.READ" in result.message
        assert "The token has: ZohoCRM.modules.ALL." in result.message


# ----- the token cache, through the service with a saved integration --------------------------------------


def test_two_tests_in_a_row_make_one_token_request(httpserver, ctx, admin, api_domain):
    token_endpoint(httpserver, token_answer(api_domain))
    httpserver.expect_request(ORG_PATH).respond_with_json(ORG)
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", config())

    first = ctx.integrations.test(admin, view.id)
    second = ctx.integrations.test(admin, view.id)

    assert first.success and second.success, (first.message, second.message)
    assert len(token_requests(httpserver)) == 1
    assert [r.headers["Authorization"] for r in org_requests(httpserver)] == [f"Zoho-oauthtoken {ACCESS_TOKEN}"] * 2
    assert first.details["token"]["cached"] is False
    assert second.details["token"]["cached"] is True
    with ctx.factory() as session:
        cached = session.scalars(select(OAuthToken).where(OAuthToken.integration_id == view.id)).all()
        stored = session.get(Integration, view.id).configuration
    assert len(cached) == 1
    assert is_encrypted(cached[0].access_token) and ACCESS_TOKEN not in cached[0].access_token
    assert all(is_encrypted(stored[name]) for name in ("clientSecret", "refreshToken"))


def test_a_new_refresh_token_does_not_reuse_the_cached_access_token(httpserver, ctx, admin, api_domain):
    token_endpoint(httpserver, token_answer(api_domain))
    httpserver.expect_request(ORG_PATH).respond_with_json(ORG)
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", config())
    ctx.integrations.test(admin, view.id)
    view = ctx.integrations.update(admin, view.id, view.version, configuration=config(refreshToken="1000.refresh.new"))

    ctx.integrations.test(admin, view.id)

    bodies = [parse_qs(r.get_data(as_text=True))["refresh_token"] for r in token_requests(httpserver)]
    assert bodies == [[REFRESH_TOKEN], ["1000.refresh.new"]]


def test_a_cached_token_revoked_early_is_replaced_once(httpserver, ctx, admin, api_domain):
    token_endpoint(httpserver, token_answer(api_domain))
    answers = iter([(200, ORG), (401, {"code": "INVALID_TOKEN", "message": "invalid oauth token"}), (200, ORG)])

    def org(request: Request) -> Response:
        status, body = next(answers)
        return Response(json.dumps(body), status=status, content_type="application/json")

    httpserver.expect_request(ORG_PATH).respond_with_handler(org)
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", config())

    first = ctx.integrations.test(admin, view.id)
    second = ctx.integrations.test(admin, view.id)

    assert first.success and second.success, second.message
    assert len(token_requests(httpserver)) == 2
    assert len(org_requests(httpserver)) == 3
    assert second.details["token"]["cached"] is False
