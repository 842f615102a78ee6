"""Custom CRM: any REST API, reached with an API key header, Bearer token, Basic auth or OAuth2."""

from __future__ import annotations

import json
import time
from urllib.parse import urljoin

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.fields import FieldSpec
from core.http import describe_exception, explain_status
from core.results import RefreshResult, TestResult, without_secrets

AUTH_TYPES = ("API_KEY", "BEARER", "BASIC", "OAUTH2")
CLIENT_AUTH = ("header", "body")
# Which keys each auth type needs inside the Credentials JSON.
CREDENTIAL_KEYS = {
    "API_KEY": ("apiKey",),
    "BEARER": ("token",),
    "BASIC": ("username", "password"),
    "OAUTH2": ("clientId", "clientSecret"),
}
CREDENTIALS_HELP = (
    'API_KEY: {"apiKey": "..."}; BEARER: {"token": "..."}; BASIC: {"username": "...", "password": "..."}; '
    'OAUTH2: {"clientId": "...", "clientSecret": "..."}'
)

FIELDS = (
    FieldSpec("name", "CRM Name", "text", required=True, placeholder="Acme CRM"),
    FieldSpec(
        "apiEndpoint",
        "API Base URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://api.example.com",
    ),
    FieldSpec("authType", "Authentication Type", "select", required=True, options=AUTH_TYPES, default="BEARER"),
    FieldSpec(
        "apiKeyHeader",
        "API Key Header",
        "text",
        required=True,
        default="X-API-Key",
        pattern=r"[A-Za-z0-9-]{1,64}",
        pattern_message="A header name uses letters, digits and dashes only.",
        shown_when=("authType", ("API_KEY",)),
    ),
    FieldSpec(
        "tokenUrl",
        "Token URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://auth.example.com/oauth/token",
        help="Where the OAuth2 client-credentials token is requested.",
        shown_when=("authType", ("OAUTH2",)),
    ),
    FieldSpec(
        "clientAuth",
        "Send client credentials in",
        "select",
        options=CLIENT_AUTH,
        default="header",
        help="header: HTTP Basic (client_secret_basic); body: form fields (client_secret_post).",
        shown_when=("authType", ("OAUTH2",)),
    ),
    FieldSpec("scope", "Scope", "text", placeholder="read", shown_when=("authType", ("OAUTH2",))),
    FieldSpec(
        "healthPath",
        "Health Check Path",
        "text",
        default="/",
        pattern=r"/[^\s]*",
        pattern_message="Start the path with /, for example /api/health.",
        help="A cheap, read-only GET that needs authentication.",
    ),
    FieldSpec(
        "credentials",
        "Credentials",
        "json",
        required=True,
        sensitive=True,
        help=CREDENTIALS_HELP,
        placeholder='{"token": "..."}',
    ),
)


def check(config: dict) -> dict[str, str]:
    """The credentials must hold what the chosen auth type needs."""
    raw = config.get("credentials")
    if not isinstance(raw, str):
        return {}
    try:
        creds = json.loads(raw)
    except ValueError:
        return {}
    auth_type = config.get("authType")
    needed = CREDENTIAL_KEYS.get(auth_type, ()) if isinstance(auth_type, str) else ()
    missing = [k for k in needed if not isinstance(creds.get(k), str) or not creds.get(k)]
    if missing:
        return {"credentials": f"For {config.get('authType')} the credentials need: {', '.join(missing)}."}
    return {}


class _Refused(Exception):
    """A sentence for the result; token_error when the token endpoint issued no token."""

    def __init__(self, message: str, token_error: oauth.TokenError | None = None):
        super().__init__(message)
        self.token_error = token_error


def _token_cache_key(config: dict, creds: dict) -> str:
    return oauth.cache_key(
        "custom",
        config.get("tokenUrl"),
        config.get("clientAuth", "header"),
        config.get("scope"),
        creds["clientId"],
        creds["clientSecret"],
    )


def _oauth2_token(
    config: dict, creds: dict, context: TestContext, issued: list[str], fresh: bool = False
) -> tuple[dict, bool]:
    """({access_token, scope}, whether it came from the cache). A cached token lives until its expires_in."""
    key = _token_cache_key(config, creds)
    if not fresh and (hit := oauth.cached(context.tokens, key)):
        issued.append(hit["access_token"])
        return hit, True
    return _new_oauth2_token(config, creds, context, issued)[0], False


def _new_oauth2_token(config: dict, creds: dict, context: TestContext, issued: list[str]) -> tuple[dict, float | None]:
    """A new client-credentials token (never the cache), then cached: (values, lifetime in seconds)."""
    try:
        token = oauth.request_token(
            context.http,
            config["tokenUrl"],
            client_id=creds["clientId"],
            client_secret=creds["clientSecret"],
            grant_type="client_credentials",
            auth_method=oauth.CLIENT_SECRET_BASIC
            if config.get("clientAuth", "header") == "header"
            else oauth.CLIENT_SECRET_POST,
            scope=config.get("scope") or None,
        )
    except oauth.TokenError as exc:
        if exc.cause is not None:
            raise _Refused(describe_exception(exc.cause, "The token endpoint"), exc) from None
        raise _Refused(
            f"The token endpoint did not issue a token (status {exc.status}"
            f"{', ' + exc.reason if exc.reason else ''}). Check the client id, secret and token URL.",
            exc,
        ) from None
    issued.append(token.access_token)
    values = {"access_token": token.access_token, "scope": token.scope}
    oauth.remember(context.tokens, _token_cache_key(config, creds), values, token.expires_in)
    return values, token.expires_in


def uses_oauth(config: dict) -> bool:
    """Whether a configuration obtains OAuth access tokens (auth type OAUTH2); also the API provider's."""
    return config.get("authType") == "OAUTH2"


# A refused client or grant: the client id, secret or scope must be fixed by a person.
RECONNECT_ERRORS = oauth.RECONNECT_ERRORS | {"invalid_scope"}


def refresh_token(config: dict, context: TestContext) -> RefreshResult:
    """A new OAuth2 client-credentials access token now (the cache bypassed) for the next test to use.

    Also the API provider's: both read the same authentication fields."""
    name = config.get("name") or "OAuth2"
    if not uses_oauth(config):
        return RefreshResult(False, f"{name} does not use OAuth2, so it has no token to refresh.", error="not_oauth")
    try:
        creds = json.loads(config.get("credentials") or "")
    except (TypeError, ValueError):
        creds = None
    problems = check(config) if isinstance(creds, dict) else {"credentials": "The stored credentials are unreadable."}
    if problems or not isinstance(creds, dict):
        message = next(iter(problems.values())) + " Edit the integration, enter them again and save."
        return RefreshResult(False, message, needs_reconnect=True, error="invalid_configuration")
    issued: list[str] = []
    try:
        _, lifetime = _new_oauth2_token(config, creds, context, issued)
    except _Refused as exc:
        result = oauth.refresh_failed(str(exc), exc, RECONNECT_ERRORS)
    else:
        result = oauth.refreshed(name, lifetime)
    return result.redacted(credential_values(config) + issued)


def _authenticate(
    config: dict, creds: dict, context: TestContext, issued: list[str], fresh: bool = False
) -> tuple[dict, tuple | None, dict | None]:
    """(headers, requests auth, for OAUTH2 what the token grants: {scope, fromCache})."""
    auth_type = config["authType"]
    if auth_type == "API_KEY":
        return {config.get("apiKeyHeader") or "X-API-Key": creds["apiKey"]}, None, None
    if auth_type == "BEARER":
        return {"Authorization": f"Bearer {creds['token']}"}, None, None
    if auth_type == "BASIC":
        return {}, (creds["username"], creds["password"]), None
    token, from_cache = _oauth2_token(config, creds, context, issued, fresh)
    grant = {"scope": token.get("scope"), "fromCache": from_cache}
    return {"Authorization": f"Bearer {token['access_token']}"}, None, grant


def test_connection(config: dict, context: TestContext) -> TestResult:
    """Authenticate as the auth type says (OAUTH2: a cached or new token), then GET the health path."""
    issued: list[str] = []
    result = _test(config, context, issued)
    return without_secrets(result, credential_values(config) + issued)


def credential_values(config: dict) -> list[str]:
    """Every string in the Credentials JSON, to keep out of results."""
    try:
        creds = json.loads(config.get("credentials") or "{}")
    except ValueError:
        return []
    return [v for v in creds.values() if isinstance(v, str)] if isinstance(creds, dict) else []


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    session = context.http
    name = config.get("name") or "The CRM"
    if problems := check(config):
        message = next(iter(problems.values()))
        return TestResult(False, message, {"field_errors": problems}, error=message)
    creds = json.loads(config["credentials"])
    url = urljoin(config["apiEndpoint"].rstrip("/") + "/", (config.get("healthPath") or "/").lstrip("/"))
    try:
        headers, auth, grant = _authenticate(config, creds, context, issued)
        started = time.monotonic()
        response = session.get(url, headers={"Accept": "application/json", **headers}, auth=auth)
        if response.status_code == 401 and grant and grant["fromCache"]:
            # The cached token was revoked before its time: fetch a new one, once.
            headers, auth, grant = _authenticate(config, creds, context, issued, fresh=True)
            started = time.monotonic()
            response = session.get(url, headers={"Accept": "application/json", **headers}, auth=auth)
    except _Refused as exc:
        return TestResult(False, str(exc), error=str(exc))
    except requests.RequestException as exc:
        message = describe_exception(exc, name)
        return TestResult(False, message, error=message)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    if response.status_code >= 400:
        message = explain_status(response, name, "the health check path")
        return TestResult(False, message, {"status": response.status_code}, error=message)
    details = {"status": response.status_code, "latencyMs": elapsed_ms, "authType": config["authType"]}
    if grant:
        details["token"] = {"scope": grant["scope"], "cached": grant["fromCache"]}
    version = response.headers.get("X-API-Version") or response.headers.get("Server")
    if version:
        details["version"] = version[:100]
    return TestResult(True, f"Connected to {name}: {url} answered {response.status_code} in {elapsed_ms} ms.", details)


PROVIDER = Provider(
    key="CUSTOM",
    name="Custom CRM",
    description="Any REST API: API key header, Bearer token, Basic auth or OAuth2 client credentials.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    check=check,
    refresh=refresh_token,
    uses_oauth=uses_oauth,
)
