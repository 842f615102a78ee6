"""The Custom CRM provider, through the integration service, against pytest-httpserver on 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from core.errors import ValidationError
from core.fields import MASK
from core.http import USER_AGENT
from core.integrations.refresh import TokenRefresher
from tests.contract.helpers import basic

API_KEY = "ak-live-7Hq2Lm9Xw3Rt5Yz1"
BEARER_TOKEN = "bt-live-Qw8Er6Ty4Ui2Op0A"
USERNAME = "crm-robot"
PASSWORD = "pw-S3cr3t-Basic-Pass"
CLIENT_ID = "client-4f7a9c"
CLIENT_SECRET = "cs-Zx9Cv7Bn5Mm3Kk1J"
ISSUED_TOKEN = "issued-access-token-0123456789"
SECRETS = (API_KEY, BEARER_TOKEN, PASSWORD, CLIENT_SECRET, ISSUED_TOKEN)


def crm_config(httpserver, auth_type: str, credentials: dict, **extra) -> dict:
    """Today's shape: each credential in its own field."""
    config = {
        "name": "Acme CRM",
        "apiEndpoint": httpserver.url_for("/api"),
        "authType": auth_type,
        "healthPath": "/health",
        **credentials,  # each credential in its own field, as the form writes them
    }
    if auth_type == "API_KEY":
        config["apiKeyHeader"] = "X-Acme-Key"
    if auth_type == "OAUTH2":
        config |= {"tokenUrl": httpserver.url_for("/oauth/token"), "clientAuth": "header", "scope": "read"}
    return config | extra


@pytest.fixture
def run(admin, unsaved_test):
    """Test a configuration through the service; no secret may reach the result or the audit trail."""
    return lambda config: unsaved_test(admin, "CUSTOM", config, SECRETS)


def health_requests(httpserver):
    return [request for request, _ in httpserver.log if request.path == "/api/health"]


def token_requests(httpserver):
    return [request for request, _ in httpserver.log if request.path == "/oauth/token"]


def old_config(httpserver, auth_type: str, credentials: dict) -> dict:
    """The shape the form stored before the credentials were split: one Credentials JSON."""
    return crm_config(httpserver, auth_type, {}) | {"credentials": json.dumps(credentials)}


# ----- each authentication type -----------------------------------------------------------------------


def test_api_key_in_a_custom_header(httpserver, run):
    httpserver.expect_request("/api/health", method="GET").respond_with_json(
        {"ok": True}, headers={"X-API-Version": "2024-06"}
    )
    result = run(crm_config(httpserver, "API_KEY", {"apiKey": API_KEY}))

    assert result.success, result.message
    assert result.message.startswith("Connected to Acme CRM")
    assert result.details["status"] == 200
    assert result.details["authType"] == "API_KEY"
    assert result.details["version"] == "2024-06"
    assert isinstance(result.details["latencyMs"], int)
    (request,) = health_requests(httpserver)
    assert request.headers["X-Acme-Key"] == API_KEY
    assert "Authorization" not in request.headers
    assert "X-API-Key" not in request.headers  # the configured name, not the default


def test_bearer_token(httpserver, run):
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    result = run(crm_config(httpserver, "BEARER", {"token": BEARER_TOKEN}))

    assert result.success, result.message
    (request,) = health_requests(httpserver)
    assert request.headers["Authorization"] == f"Bearer {BEARER_TOKEN}"


def test_basic_auth(httpserver, run):
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    result = run(crm_config(httpserver, "BASIC", {"username": USERNAME, "password": PASSWORD}))

    assert result.success, result.message
    (request,) = health_requests(httpserver)
    assert request.headers["Authorization"] == basic(USERNAME, PASSWORD)


def _token_endpoint(httpserver, status: int = 200, body: dict | None = None) -> None:
    body = {"access_token": ISSUED_TOKEN, "token_type": "Bearer", "expires_in": 3600} if body is None else body
    httpserver.expect_request("/oauth/token", method="POST").respond_with_json(body, status=status)


def test_oauth2_client_credentials_in_a_basic_header(httpserver, run):
    _token_endpoint(httpserver)
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    result = run(crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))

    assert result.success, result.message
    (token_request,) = token_requests(httpserver)
    assert token_request.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.headers["User-Agent"] == USER_AGENT  # sent by context.http through authlib
    assert parse_qs(token_request.get_data(as_text=True)) == {"grant_type": ["client_credentials"], "scope": ["read"]}
    (health,) = health_requests(httpserver)
    assert health.headers["Authorization"] == f"Bearer {ISSUED_TOKEN}"


def test_oauth2_client_credentials_in_the_body(httpserver, run):
    _token_endpoint(httpserver)
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    config = crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}, clientAuth="body")
    del config["scope"]
    result = run(config)

    assert result.success, result.message
    (token_request,) = token_requests(httpserver)
    assert "Authorization" not in token_request.headers
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.get_data(as_text=True)) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    (health,) = health_requests(httpserver)
    assert health.headers["Authorization"] == f"Bearer {ISSUED_TOKEN}"


# ----- answers mapped to sentences ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "attempts"),
    [
        (401, "refused the credentials (401)", 1),
        (403, "lack permission for the health check path (403)", 1),
        (404, "nothing at the health check path (404)", 1),
        (429, "rate limiting requests. Try again in a moment", 2),  # retried once after Retry-After
        (500, "unavailable (500)", 2),  # retried once
    ],
)
def test_status_mapping(httpserver, run, status, expected, attempts):
    # The body echoes the secret, as some servers do; it must not reach the message.
    httpserver.expect_request("/api/health").respond_with_json(
        {"error": f"bad token {BEARER_TOKEN}"}, status=status, headers={"Retry-After": "1"} if status == 429 else {}
    )
    result = run(crm_config(httpserver, "BEARER", {"token": BEARER_TOKEN}))

    assert not result.success
    assert expected in result.message
    assert result.message.startswith("Acme CRM")
    assert result.error == result.message
    assert result.details == {"status": status}
    assert len(health_requests(httpserver)) == attempts


def test_saved_integration_records_the_outcome(httpserver, ctx, admin):
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    created = ctx.integrations.create(
        admin, "Acme", "CUSTOM", crm_config(httpserver, "BEARER", {"token": BEARER_TOKEN})
    )
    assert created.configuration["token"] == MASK

    result = ctx.integrations.test(admin, created.id)
    view = ctx.integrations.get(admin, created.id)
    assert result.success, result.message
    assert (view.status, view.status_message) == ("connected", result.message)
    assert view.last_checked_at is not None

    httpserver.clear()
    httpserver.expect_request("/api/health").respond_with_json({}, status=401)
    result = ctx.integrations.test(admin, created.id)
    view = ctx.integrations.get(admin, created.id)
    assert not result.success
    assert (view.status, view.status_message) == ("error", result.error)
    assert health_requests(httpserver)[0].headers["Authorization"] == f"Bearer {BEARER_TOKEN}"  # decrypted for the call


def test_redirects_keep_the_key_on_the_same_server_only(httpserver, run):
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/elsewhere").respond_with_json({"error": "unauthorised"}, status=401)
        httpserver.expect_request("/api/health").respond_with_data(
            "", status=302, headers={"Location": httpserver.url_for("/api/v2/health")}
        )
        httpserver.expect_request("/api/v2/health").respond_with_json({"ok": True})
        same = run(crm_config(httpserver, "API_KEY", {"apiKey": API_KEY}))
        kept = [request for request, _ in httpserver.log if request.path == "/api/v2/health"]
        httpserver.clear()
        httpserver.expect_request("/api/health").respond_with_data(
            "", status=302, headers={"Location": other.url_for("/elsewhere")}
        )
        moved = run(crm_config(httpserver, "API_KEY", {"apiKey": API_KEY}))
        followed = [request for request, _ in other.log]
    finally:
        other.clear()
        other.stop()

    assert same.success, same.message
    assert [request.headers.get("X-Acme-Key") for request in kept] == [API_KEY]
    assert not moved.success
    assert "refused the credentials (401)" in moved.message
    assert len(followed) == 1
    assert "X-Acme-Key" not in followed[0].headers  # the key stayed with the configured server


# ----- the token endpoint ------------------------------------------------------------------------------


def test_token_endpoint_refusing(httpserver, run):
    # The description echoes the client secret, as a careless server might; the service redacts it.
    _token_endpoint(
        httpserver,
        401,
        {"error": "invalid_client", "error_description": f"Client authentication failed: {CLIENT_SECRET}"},
    )
    result = run(crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))

    assert not result.success
    assert "The token endpoint did not issue a token (status 401, Client authentication failed" in result.message
    assert "[redacted]" in result.message
    assert "client id, secret and token URL" in result.message
    assert len(token_requests(httpserver)) == 1  # a POST is not retried
    assert health_requests(httpserver) == []


def test_token_endpoint_answer_without_a_token(httpserver, run):
    _token_endpoint(httpserver, 200, {"token_type": "Bearer"})
    result = run(crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))

    assert not result.success
    assert "did not issue a token (status 200)" in result.message
    assert health_requests(httpserver) == []


# ----- credentials that do not fit the auth type --------------------------------------------------


@pytest.mark.parametrize(
    ("auth_type", "credentials", "missing"),
    [
        ("BASIC", {"username": USERNAME}, {"password": "Password is required."}),
        ("API_KEY", {"token": BEARER_TOKEN}, {"apiKey": "API Key is required."}),
        ("OAUTH2", {"clientId": CLIENT_ID}, {"clientSecret": "Client Secret is required."}),
        ("BEARER", {"token": ""}, {"token": "Bearer Token is required."}),
    ],
)
def test_credentials_missing_a_field_for_the_auth_type(httpserver, run, ctx, admin, auth_type, credentials, missing):
    config = crm_config(httpserver, auth_type, credentials)
    result = run(config)

    assert not result.success
    assert result.details["field_errors"] == missing
    assert httpserver.log == []  # nothing was sent
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(admin, "Acme", "CUSTOM", config)
    assert raised.value.errors == missing


@pytest.mark.parametrize(
    ("auth_type", "credentials", "missing"),
    [("BASIC", {"username": USERNAME}, "password"), ("OAUTH2", {"clientId": CLIENT_ID}, "clientSecret")],
)
def test_an_old_credentials_json_missing_a_key_says_which_field(
    httpserver, ctx, admin, store_old_shape, auth_type, credentials, missing
):
    config = old_config(httpserver, auth_type, credentials)
    integration = store_old_shape(admin, "CUSTOM", config)
    result = ctx.integrations.test(admin, integration)

    assert not result.success
    label = {"password": "password", "clientSecret": "client secret"}[missing]
    assert set(result.details["field_errors"]) == {missing}
    assert result.message.startswith(f"Enter the {label}:")
    assert httpserver.log == []


# ----- configurations stored before the credentials were split (one Credentials JSON) ---------------------


@pytest.mark.parametrize(
    ("auth_type", "credentials"),
    [
        ("API_KEY", {"apiKey": API_KEY}),
        ("BEARER", {"token": BEARER_TOKEN}),
        ("BASIC", {"username": USERNAME, "password": PASSWORD}),
        ("OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}),
    ],
)
def test_an_old_credentials_json_still_sends_the_same_request(
    httpserver, ctx, admin, store_old_shape, auth_type, credentials
):
    if auth_type == "OAUTH2":
        _token_endpoint(httpserver)
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    new = ctx.integrations.create(admin, "New", "CUSTOM", crm_config(httpserver, auth_type, credentials))
    old = store_old_shape(admin, "CUSTOM", old_config(httpserver, auth_type, credentials))

    for integration in (new.id, old):
        result = ctx.integrations.test(admin, integration)
        assert result.success, result.message
    first, second = health_requests(httpserver)
    for header in ("Authorization", "X-Acme-Key"):
        assert first.headers.get(header) == second.headers.get(header)
    assert first.headers.get("Authorization") or first.headers.get("X-Acme-Key")


def test_an_old_oauth2_credentials_json_is_refreshed_under_the_same_token_cache_key(
    httpserver, ctx, admin, store_old_shape
):
    _token_endpoint(httpserver)
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    old = old_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    integration = store_old_shape(admin, "CUSTOM", old)

    refreshed = TokenRefresher(ctx.integrations).refresh(integration)
    assert refreshed.ok, refreshed.message
    result = ctx.integrations.test(admin, integration)

    assert result.success and result.details["token"]["cached"], result.details  # the refresh's token, reused
    assert len(token_requests(httpserver)) == 1
    assert token_requests(httpserver)[0].headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)


# ----- each secret masked, and replaceable on its own ---------------------------------------------------


def test_each_secret_is_masked_and_replaced_on_its_own(httpserver, ctx, admin):
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    config = crm_config(httpserver, "BASIC", {"username": USERNAME, "password": PASSWORD})
    created = ctx.integrations.create(admin, "Acme", "CUSTOM", config)
    view = ctx.integrations.for_edit(admin, created.id)
    assert view.configuration["password"] == MASK and view.configuration["username"] == USERNAME
    assert view.secret_hints == {"password": PASSWORD[-4:]}

    renamed = view.configuration | {"username": "crm-robot-2"}  # the password left masked: kept
    ctx.integrations.update(admin, created.id, view.version, configuration=renamed)
    assert ctx.integrations.test(admin, created.id).success
    view = ctx.integrations.for_edit(admin, created.id)
    ctx.integrations.update(
        admin, created.id, view.version, configuration=view.configuration | {"password": "pw-new-0123456789"}
    )
    assert ctx.integrations.test(admin, created.id).success

    first, second = health_requests(httpserver)
    assert first.headers["Authorization"] == basic("crm-robot-2", PASSWORD)
    assert second.headers["Authorization"] == basic("crm-robot-2", "pw-new-0123456789")


def test_a_short_secret_gets_no_hint(httpserver, ctx, admin):
    created = ctx.integrations.create(admin, "Acme", "CUSTOM", crm_config(httpserver, "BEARER", {"token": "short-tok"}))
    view = ctx.integrations.for_edit(admin, created.id)
    assert view.configuration["token"] == MASK and view.secret_hints == {}
    assert ctx.integrations.get(admin, created.id).secret_hints == {}  # only an edit form asks for hints


def test_a_health_path_without_its_leading_slash_is_fixed(httpserver, ctx, admin):
    config = crm_config(httpserver, "BEARER", {"token": BEARER_TOKEN}, healthPath="api/health")
    created = ctx.integrations.create(admin, "Acme", "CUSTOM", config)
    assert created.configuration["healthPath"] == "/api/health"


# ----- the OAuth2 token cache, through the service with a saved integration ---------------------------------


def oauth2_integration(ctx, admin, httpserver, **extra) -> int:
    config = crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}, **extra)
    return ctx.integrations.create(admin, "Acme OAuth", "CUSTOM", config).id


def test_oauth2_token_is_cached_until_it_expires(httpserver, ctx, admin):
    _token_endpoint(httpserver, body={"access_token": ISSUED_TOKEN, "expires_in": 3600, "scope": "read"})
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    integration = oauth2_integration(ctx, admin, httpserver)

    first = ctx.integrations.test(admin, integration)
    second = ctx.integrations.test(admin, integration)

    assert first.success and second.success, (first.message, second.message)
    assert len(token_requests(httpserver)) == 1
    assert [r.headers["Authorization"] for r in health_requests(httpserver)] == [f"Bearer {ISSUED_TOKEN}"] * 2
    assert first.details["token"] == {"scope": "read", "cached": False}
    assert second.details["token"] == {"scope": "read", "cached": True}


def test_oauth2_token_without_a_lifetime_is_not_cached(httpserver, ctx, admin):
    _token_endpoint(httpserver, body={"access_token": ISSUED_TOKEN, "token_type": "Bearer"})
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    integration = oauth2_integration(ctx, admin, httpserver)

    ctx.integrations.test(admin, integration)
    ctx.integrations.test(admin, integration)

    assert len(token_requests(httpserver)) == 2


def test_oauth2_cached_token_refused_early_is_replaced_once(httpserver, ctx, admin):
    _token_endpoint(httpserver)
    statuses = iter([200, 401, 200])

    def health(request):
        return Response("{}", status=next(statuses), content_type="application/json")

    httpserver.expect_request("/api/health").respond_with_handler(health)
    integration = oauth2_integration(ctx, admin, httpserver)

    first = ctx.integrations.test(admin, integration)
    second = ctx.integrations.test(admin, integration)

    assert first.success and second.success, second.message
    assert len(token_requests(httpserver)) == 2
    assert len(health_requests(httpserver)) == 3


def test_oauth2_changed_client_secret_does_not_reuse_the_cached_token(httpserver, ctx, admin):
    _token_endpoint(httpserver)
    httpserver.expect_request("/api/health").respond_with_json({"ok": True})
    integration = oauth2_integration(ctx, admin, httpserver)
    ctx.integrations.test(admin, integration)
    view = ctx.integrations.get(admin, integration)
    changed = crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": "cs-another-secret-1234"})
    ctx.integrations.update(admin, integration, view.version, configuration=changed)

    ctx.integrations.test(admin, integration)

    assert len(token_requests(httpserver)) == 2
    assert token_requests(httpserver)[1].headers["Authorization"] == basic(CLIENT_ID, "cs-another-secret-1234")


def test_oauth2_token_endpoint_unreachable(httpserver, run, closed_port):
    config = crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    config["tokenUrl"] = f"http://127.0.0.1:{closed_port}/oauth/token"

    result = run(config)

    assert not result.success
    assert result.message.startswith("The token endpoint refused the connection")
    assert health_requests(httpserver) == []


def test_oauth2_error_inside_a_200_answer_is_a_refusal(httpserver, run):
    _token_endpoint(httpserver, 200, {"error": "invalid_scope", "error_description": "scope read is unknown"})

    result = run(crm_config(httpserver, "OAUTH2", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))

    assert not result.success
    assert "did not issue a token (status 200, scope read is unknown)" in result.message
