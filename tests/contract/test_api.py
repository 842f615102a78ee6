"""The generic REST / GraphQL API provider, through the integration service, against pytest-httpserver on
127.0.0.1: every Custom CRM auth type, REST methods and expected statuses, GraphQL's { __typename }."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from core.crypto import field_context
from core.errors import ValidationError
from core.fields import MASK
from providers import api, custom
from tests.contract.helpers import basic, requests_to

API_KEY = "api-key-7Hq2Lm9Xw3Rt5Yz1"
BEARER_TOKEN = "api-bearer-Qw8Er6Ty4Ui2Op0A"
USERNAME = "api-robot"
PASSWORD = "api-S3cr3t-Basic-Pass"
CLIENT_ID = "api-client-4f7a9c"
CLIENT_SECRET = "api-cs-Zx9Cv7Bn5Mm3Kk1J"
ISSUED_TOKEN = "api-issued-access-token-0123456789"
SECRETS = (API_KEY, BEARER_TOKEN, PASSWORD, CLIENT_SECRET, ISSUED_TOKEN)
CREDENTIALS = {
    "API_KEY": {"apiKey": API_KEY},
    "BEARER": {"token": BEARER_TOKEN},
    "BASIC": {"username": USERNAME, "password": PASSWORD},
    "OAUTH2": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET},
}


def api_config(httpserver, auth_type: str = "BEARER", kind: str = "REST", **extra) -> dict:
    config = {
        "baseUrl": httpserver.url_for("/api"),
        "kind": kind,
        "path": "/graphql" if kind == "GRAPHQL" else "/v1/status",
        "authType": auth_type,
        **CREDENTIALS[auth_type],
    }
    if kind == "REST":
        config |= {"method": "GET", "expectedStatus": 200}
    if auth_type == "API_KEY":
        config["apiKeyHeader"] = "X-Acme-Key"
    if auth_type == "OAUTH2":
        config |= {"tokenUrl": httpserver.url_for("/oauth/token"), "clientAuth": "header", "scope": "read"}
    return config | extra


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


@pytest.fixture
def run(pro, unsaved_test):
    """Test a configuration through the service; no secret may reach the result or the audit trail."""
    return lambda config: unsaved_test(pro, "API", config, SECRETS)


def token_endpoint(httpserver, status: int = 200, body: dict | None = None) -> None:
    body = {"access_token": ISSUED_TOKEN, "token_type": "Bearer", "expires_in": 3600} if body is None else body
    httpserver.expect_request("/oauth/token", method="POST").respond_with_json(body, status=status)


# ----- the form is the Custom CRM's, plus the request -----------------------------------------------------


def test_auth_fields_are_the_custom_crms_own():
    for name in api.AUTH_FIELD_NAMES:
        assert api.PROVIDER.field(name) is custom.PROVIDER.field(name)
    assert api.PROVIDER.field("authType").options == custom.AUTH_TYPES


def test_rest_only_fields_follow_the_kind():
    for name in ("method", "expectedStatus"):
        spec = api.PROVIDER.field(name)
        assert spec.is_shown({"kind": "REST"}) and not spec.is_shown({"kind": "GRAPHQL"})
    assert api.PROVIDER.field("method").options == ("GET", "HEAD")  # read-only methods only
    assert api.PROVIDER.field("path").is_shown({"kind": "GRAPHQL"})


# ----- REST with each authentication type ---------------------------------------------------------------


def test_rest_api_key_in_a_custom_header(httpserver, run):
    httpserver.expect_request("/api/v1/status", method="GET").respond_with_json(
        {"ok": True}, headers={"X-API-Version": "2025-01"}
    )
    result = run(api_config(httpserver, "API_KEY"))

    assert result.success, result.message
    assert result.message.startswith(f"Connected: GET {httpserver.url_for('/api/v1/status')} answered 200")
    assert result.details["status"] == 200
    assert result.details["expectedStatus"] == 200
    assert result.details["authType"] == "API_KEY"
    assert result.details["version"] == "2025-01"
    assert isinstance(result.details["latencyMs"], int)
    (request,) = requests_to(httpserver, "/api/v1/status")
    assert request.headers["X-Acme-Key"] == API_KEY
    assert "Authorization" not in request.headers


def test_rest_bearer(httpserver, run):
    httpserver.expect_request("/api/v1/status").respond_with_json({"ok": True})
    result = run(api_config(httpserver, "BEARER"))

    assert result.success, result.message
    (request,) = requests_to(httpserver, "/api/v1/status")
    assert request.headers["Authorization"] == f"Bearer {BEARER_TOKEN}"


def test_rest_basic_with_head(httpserver, run):
    httpserver.expect_request("/api/v1/status", method="HEAD").respond_with_data("", status=200)
    result = run(api_config(httpserver, "BASIC", method="HEAD"))

    assert result.success, result.message
    assert result.details["method"] == "HEAD"
    (request,) = requests_to(httpserver, "/api/v1/status")
    assert request.method == "HEAD"
    assert request.headers["Authorization"] == basic(USERNAME, PASSWORD)


@pytest.mark.parametrize("client_auth", ["header", "body"])
def test_rest_oauth2_client_credentials(httpserver, run, client_auth):
    token_endpoint(httpserver)
    httpserver.expect_request("/api/v1/status").respond_with_json({"ok": True})
    result = run(api_config(httpserver, "OAUTH2", clientAuth=client_auth))

    assert result.success, result.message
    (token_request,) = requests_to(httpserver, "/oauth/token")
    form = parse_qs(token_request.get_data(as_text=True))
    if client_auth == "header":
        assert token_request.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
        assert form == {"grant_type": ["client_credentials"], "scope": ["read"]}
    else:
        assert "Authorization" not in token_request.headers
        assert form["client_id"] == [CLIENT_ID] and form["client_secret"] == [CLIENT_SECRET]
    (request,) = requests_to(httpserver, "/api/v1/status")
    assert request.headers["Authorization"] == f"Bearer {ISSUED_TOKEN}"
    assert result.details["token"]["cached"] is False


def test_saved_oauth2_integration_reuses_its_cached_token(httpserver, ctx, pro):
    token_endpoint(httpserver)
    httpserver.expect_request("/api/v1/status").respond_with_json({"ok": True})
    created = ctx.integrations.create(pro, "Acme API", "API", api_config(httpserver, "OAUTH2"))

    first = ctx.integrations.test(pro, created.id)
    second = ctx.integrations.test(pro, created.id)

    assert first.success and second.success, (first.message, second.message)
    assert len(requests_to(httpserver, "/oauth/token")) == 1
    assert second.details["token"]["cached"] is True
    assert ISSUED_TOKEN not in json.dumps([first.as_dict(), second.as_dict()])


def test_token_endpoint_refusing(httpserver, run):
    token_endpoint(httpserver, 401, {"error": "invalid_client", "error_description": "Client authentication failed"})
    result = run(api_config(httpserver, "OAUTH2"))

    assert not result.success
    assert "The token endpoint did not issue a token (status 401" in result.message
    assert requests_to(httpserver, "/api/v1/status") == []


# ----- REST: the expected status -------------------------------------------------------------------------


def test_rest_other_expected_status(httpserver, run):
    httpserver.expect_request("/api/v1/status").respond_with_data("", status=204)
    assert run(api_config(httpserver, expectedStatus=204)).success
    result = run(api_config(httpserver, expectedStatus=200))

    assert not result.success
    assert result.message == "The API at {} answered with status 204. The test expects 200.".format(
        httpserver.url_for("/").split("/")[2]
    )
    assert result.details["status"] == 204


def test_rest_expected_redirect_is_not_followed(httpserver, run):
    httpserver.expect_request("/api/v1/status").respond_with_data("", status=301, headers={"Location": "/api/v2"})
    result = run(api_config(httpserver, expectedStatus=301))

    assert result.success, result.message
    assert requests_to(httpserver, "/api/v2") == []
    failed = run(api_config(httpserver, expectedStatus=302))
    assert not failed.success
    assert "redirected (301) to /api/v2. The test expects 302." in failed.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "refused the credentials (401)"),
        (403, "lack permission for this path (403)"),
        (404, "nothing at this path (404)"),
        (405, "does not allow this method here (405)"),
        (429, "is rate limiting requests"),
        (500, "is unavailable (500)"),
    ],
)
def test_rest_failures_in_plain_words(httpserver, run, status, expected):
    # The body echoes the token, as some servers do; it must not reach the result.
    httpserver.expect_request("/api/v1/status").respond_with_json(
        {"error": f"bad token {BEARER_TOKEN}"}, status=status, headers={"Retry-After": "1"} if status == 429 else {}
    )
    result = run(api_config(httpserver))

    assert not result.success
    assert expected in result.message
    assert result.message.endswith("The test expects 200.")
    assert result.error == result.message


def test_refused_connection(run, closed_port, httpserver):
    config = api_config(httpserver, baseUrl=f"http://127.0.0.1:{closed_port}")
    result = run(config)

    assert not result.success
    assert "refused the connection" in result.message


def test_path_is_appended_to_the_base_url_never_resolved():
    config = {"baseUrl": "https://api.example.com/base/", "path": "//other.example/x"}
    assert api._url(config) == "https://api.example.com/base//other.example/x"
    assert api._url(config | {"path": "/"}) == "https://api.example.com/base"


# ----- GraphQL -----------------------------------------------------------------------------------------


def test_graphql_typename(httpserver, run):
    httpserver.expect_request("/api/graphql", method="POST").respond_with_json({"data": {"__typename": "Query"}})
    result = run(api_config(httpserver, "BEARER", kind="GRAPHQL"))

    assert result.success, result.message
    assert result.details["typename"] == "Query"
    assert result.details["method"] == "POST"
    assert "answered { __typename } with Query" in result.message
    (request,) = requests_to(httpserver, "/api/graphql")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {BEARER_TOKEN}"
    assert json.loads(request.get_data()) == {"query": "{ __typename }"}


def test_graphql_at_the_base_url_itself(httpserver, run):
    httpserver.expect_request("/api", method="POST").respond_with_json({"data": {"__typename": "Root"}})
    result = run(api_config(httpserver, "API_KEY", kind="GRAPHQL", path="/"))

    assert result.success, result.message
    assert requests_to(httpserver, "/api")[0].headers["X-Acme-Key"] == API_KEY


def test_graphql_error_answer(httpserver, run):
    httpserver.expect_request("/api/graphql", method="POST").respond_with_json(
        {"errors": [{"message": "Cannot query field '__typename' on type 'Query'."}]}, status=400
    )
    result = run(api_config(httpserver, kind="GRAPHQL"))

    assert not result.success
    assert "answered with an error: Cannot query field '__typename'" in result.message


def test_graphql_endpoint_that_is_not_graphql(httpserver, run):
    httpserver.expect_request("/api/graphql", method="POST").respond_with_data(
        "<html>Welcome</html>", content_type="text/html"
    )
    result = run(api_config(httpserver, kind="GRAPHQL"))

    assert not result.success
    assert "not as a GraphQL endpoint (no data.__typename)" in result.message


@pytest.mark.parametrize(("status", "expected"), [(401, "refused the credentials"), (503, "unavailable (503)")])
def test_graphql_failures(httpserver, run, status, expected):
    httpserver.expect_request("/api/graphql", method="POST").respond_with_json({"message": "no"}, status=status)
    result = run(api_config(httpserver, kind="GRAPHQL"))

    assert not result.success
    assert expected in result.message
    assert len(requests_to(httpserver, "/api/graphql")) == 1  # a POST is never retried


# ----- validation and storage ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [99, 600, 200.5])
def test_expected_status_must_be_an_http_status(httpserver, ctx, pro, status):
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(pro, "Acme API", "API", api_config(httpserver, expectedStatus=status))
    assert set(raised.value.errors) == {"expectedStatus"}


def test_credentials_must_fit_the_auth_type(httpserver, ctx, pro, run):
    config = api_config(httpserver, "BASIC", password="")
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(pro, "Acme API", "API", config)
    assert raised.value.errors == {"password": "Password is required."}
    assert not run(config).success
    assert httpserver.log == []


def test_credentials_are_stored_encrypted_and_graphql_drops_rest_fields(httpserver, ctx, pro):
    created = ctx.integrations.create(pro, "Acme GraphQL", "API", api_config(httpserver, "BASIC", kind="GRAPHQL"))
    from core.models import Integration

    with ctx.factory() as session:
        stored = session.get(Integration, created.id).configuration
    assert stored["password"].startswith("enc:v2:")
    assert stored["username"] == USERNAME
    assert PASSWORD not in json.dumps(stored)
    assert ctx.cipher.decrypt(stored["password"], field_context(created.id, "password")) == PASSWORD
    assert "method" not in stored and "expectedStatus" not in stored
    assert created.configuration["password"] == MASK
    assert created.type == "API"


def test_a_path_without_its_leading_slash_is_fixed(httpserver, ctx, pro):
    created = ctx.integrations.create(pro, "Acme API", "API", api_config(httpserver, "BEARER", path="v1/status"))
    assert created.configuration["path"] == "/v1/status"


def test_an_old_credentials_json_still_tests(httpserver, ctx, pro, store_old_shape):
    httpserver.expect_request("/api/v1/status").respond_with_json({"ok": True})
    config = api_config(httpserver, "BEARER")
    del config["token"]
    integration = store_old_shape(pro, "API", config | {"credentials": json.dumps({"token": BEARER_TOKEN})})

    result = ctx.integrations.test(pro, integration)

    assert result.success, result.message
    assert requests_to(httpserver, "/api/v1/status")[0].headers["Authorization"] == f"Bearer {BEARER_TOKEN}"
