"""API: a generic REST or GraphQL endpoint, reached with the Custom CRM's authentication types.

- REST: ``GET`` or ``HEAD`` on the base URL plus the path; the test passes when the answer has exactly the
  expected status (a 3xx expected status is checked without following the redirect).
- GraphQL: ``POST {"query": "{ __typename }"}`` to the base URL plus the path; the test passes when the
  answer is JSON with a string at ``data.__typename`` (the root query type's name, e.g. ``Query``).

Authentication (API key header, Bearer token, Basic, OAuth2 client credentials with the client's
credentials in a Basic header or in the body, or an OAuth2 refresh token pasted as OAUTH2_CODE; only the
Custom CRM offers Connect with) is the Custom CRM's: its field definitions (a field per secret) and the code
that applies them are imported from providers/custom_auth.py, not copied, so both types always offer the same.
OAuth2 access tokens are cached per integration (context.tokens) and never appear in a result.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from core.catalog import Provider, TestContext
from core.fields import FieldSpec, rooted_path
from core.http import describe_exception, explain_status, read_json
from core.results import TestResult, without_secrets
from core.tiers import Tier
from providers import custom_auth

KINDS = ("REST", "GRAPHQL")
METHODS = ("GET", "HEAD")
GRAPHQL_QUERY = "{ __typename }"

# The Custom CRM's authentication fields (labels, help, defaults, shown_when, the hidden old Credentials JSON)
# and the code that applies them, from providers/custom_auth.py: imported, not copied.
AUTH_FIELDS = custom_auth.FIELDS
AUTH_FIELD_NAMES = tuple(spec.name for spec in AUTH_FIELDS)

FIELDS = (
    FieldSpec(
        "baseUrl",
        "Base URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://api.example.com",
        help="The API's address; the test calls it plus the path below.",
    ),
    FieldSpec(
        "kind",
        "API kind",
        "select",
        required=True,
        options=KINDS,
        default="REST",
        help="REST: one request whose status is checked. GRAPHQL: the query { __typename } must be answered.",
    ),
    FieldSpec(
        "path",
        "Path",
        "text",
        default="/",
        pattern=r"/[^\s]*",
        pattern_message="Enter a path such as /v1/status or /graphql, without spaces.",
        placeholder="/v1/status",
        help="REST: a cheap, read-only path. GraphQL: the endpoint's path, e.g. /graphql (/ for the base URL).",
    ),
    FieldSpec(
        "method",
        "Method",
        "select",
        options=METHODS,
        default="GET",
        help="Only read-only methods are offered: a test must not change anything.",
        shown_when=("kind", ("REST",)),
    ),
    FieldSpec(
        "expectedStatus",
        "Expected status",
        "number",
        default=200,
        help="The test passes only when the answer has exactly this HTTP status.",
        shown_when=("kind", ("REST",)),
    ),
    *AUTH_FIELDS,
)


def check(config: dict) -> dict[str, str]:
    """The Custom CRM's credential rule, and an expected status from 100 to 599."""
    problems = dict(custom_auth.check(config))
    if config.get("kind", "REST") == "REST" and (status := config.get("expectedStatus")) not in (None, ""):
        try:
            number = float(status)
        except (TypeError, ValueError):
            number = None
        if number is not None and (isinstance(status, bool) or not number.is_integer() or not 100 <= number <= 599):
            problems["expectedStatus"] = "Enter an HTTP status from 100 to 599, for example 200."
    return problems


def normalise(config: dict) -> dict:
    """Pasted input made what the fields expect: a path gets its leading /, an old Credentials JSON is split."""
    if "path" in config:
        config["path"] = rooted_path(config["path"])
    return custom_auth.split_legacy(config, strict=True)


def _url(config: dict) -> str:
    base, path = config["baseUrl"].rstrip("/"), (config.get("path") or "/").strip()
    return base if path == "/" else base + path  # appended, never resolved: the host cannot change


def _explain(status: int, response: requests.Response, where: str) -> str:
    if status == 405:
        return f"{where} does not allow this method here (405). Check the method, or the kind of API."
    return explain_status(response, where)


def _send(config: dict, context: TestContext, issued: list[str], url: str) -> tuple[requests.Response, dict | None]:
    """One authenticated request (a cached OAuth2 token refused with 401 is replaced, once)."""
    creds = custom_auth.credentials(config)
    kind = config.get("kind", "REST")
    expected = int(float(config.get("expectedStatus") or 200))

    def send(fresh: bool) -> tuple[requests.Response, dict | None]:
        headers, auth, grant = custom_auth.authenticate(config, creds, context, issued, fresh)
        if kind == "GRAPHQL":
            headers = {"Accept": "application/graphql-response+json, application/json", **headers}
            return context.http.post(url, json={"query": GRAPHQL_QUERY}, headers=headers, auth=auth), grant
        response = context.http.request(
            config.get("method") or "GET",
            url,
            headers={"Accept": "application/json", **headers},
            auth=auth,
            allow_redirects=not 300 <= expected < 400,
        )
        return response, grant

    response, grant = send(False)
    if response.status_code == 401 and grant and grant.get("fromCache"):
        response, grant = send(True)
    return response, grant


def _graphql_error(body: object) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list) or not body["errors"]:
        return None
    first = body["errors"][0]
    text = first.get("message") if isinstance(first, dict) else first
    return str(text or "no message")[:200]


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    if problems := check(config):
        message = next(iter(problems.values()))
        return TestResult(False, message, {"field_errors": problems}, error=message)
    url, kind = _url(config), config.get("kind", "REST")
    host = urlsplit(url).netloc
    where = f"The API at {host}"
    method = "POST" if kind == "GRAPHQL" else config.get("method") or "GET"
    details: dict = {"kind": kind, "method": method, "url": url, "authType": config["authType"]}
    started = time.monotonic()
    try:
        response, grant = _send(config, context, issued, url)
    except custom_auth._Refused as exc:
        return TestResult(False, str(exc), details, error=str(exc))
    except requests.RequestException as exc:
        message = describe_exception(exc, where)
        return TestResult(False, message, details, error=message)
    latency_ms = round((time.monotonic() - started) * 1000)
    status = response.status_code
    details |= {"status": status, "latencyMs": latency_ms}
    if grant:
        details["token"] = {"scope": grant.get("scope"), "cached": grant.get("fromCache")}
    if server := response.headers.get("X-API-Version") or response.headers.get("Server"):
        details["version"] = server[:100]
    if kind == "GRAPHQL":
        return _graphql_result(response, details, where, url)
    expected = int(float(config.get("expectedStatus") or 200))
    details["expectedStatus"] = expected
    if status != expected:
        reason = _explain(status, response, where) if status >= 400 else f"{where} answered with status {status}."
        if 300 <= status < 400 and response.headers.get("Location"):
            reason = f"{where} redirected ({status}) to {response.headers['Location'][:200]}."
        message = f"{reason} The test expects {expected}."
        return TestResult(False, message, details, error=message)
    return TestResult(True, f"Connected: {method} {url} answered {status} as expected, in {latency_ms} ms.", details)


def _graphql_result(response: requests.Response, details: dict, where: str, url: str) -> TestResult:
    status, body = response.status_code, read_json(response)
    if status in (401, 403, 429) or status >= 500 or (status >= 400 and body is None):
        message = _explain(status, response, where)
        return TestResult(False, message, details, error=message)
    if error := _graphql_error(body):
        message = f"The GraphQL endpoint at {url} answered with an error: {error}"
        return TestResult(False, message, details, error=message)
    data = body.get("data") if isinstance(body, dict) else None
    typename = data.get("__typename") if isinstance(data, dict) else None
    if not isinstance(typename, str) or not typename:
        message = (
            f"{url} answered {status}, but not as a GraphQL endpoint (no data.__typename). "
            "Check the path points at the GraphQL endpoint, often /graphql."
        )
        return TestResult(False, message, details, error=message)
    details["typename"] = typename[:100]
    message = f"Connected: the GraphQL endpoint at {url} answered {{ __typename }} with {typename[:100]}."
    return TestResult(True, message, details)


def test_connection(config: dict, context: TestContext) -> TestResult:
    issued: list[str] = []
    result = _test(config, context, issued)
    return without_secrets(result, custom_auth.credential_values(config) + issued)


PROVIDER = Provider(
    key="API",
    name="REST or GraphQL API",
    description="Any REST or GraphQL endpoint, with an API key header, Bearer token, Basic auth or OAuth2.",
    category="API",
    fields=FIELDS,
    test=test_connection,
    min_tier=Tier.PRO_PLUS,
    check=check,
    normalise=normalise,
    upgrade=custom_auth.upgrade,
    refresh=custom_auth.refresh_token,  # the Custom CRM's OAuth2 (client credentials, refresh token), as its auth is
    uses_oauth=custom_auth.uses_oauth,
)
