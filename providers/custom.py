"""Custom CRM: any REST API, reached with an API key header, Bearer token, Basic auth or OAuth2: client
credentials (OAUTH2), or an authorization code's refresh token (OAUTH2_CODE), from "Connect with Custom CRM"
against the administrator's OAuth app (authorize and token URLs entered on the OAuth apps page) or pasted.

Each secret is its own encrypted field, shown only for its auth type (providers/custom_auth.py, which the API
provider shares); a configuration saved with the older single Credentials JSON is still read, and saved in the
new fields on its next edit. OAuth2 access tokens are cached per integration (context.tokens) for their
lifetime; a rotated refresh token replaces the stored one."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec, rooted_path
from core.http import describe_exception, explain_status
from core.results import TestResult, without_secrets
from providers import custom_auth

# Re-exported: the names the API provider and the tests use.
AUTH_TYPES = custom_auth.AUTH_TYPES
OAUTH_TYPES = custom_auth.OAUTH_TYPES
CLIENT_AUTH = custom_auth.CLIENT_AUTH
check = custom_auth.check
credential_values = custom_auth.credential_values
uses_oauth = custom_auth.uses_oauth
refresh_token = custom_auth.refresh_token
RECONNECT_ERRORS = custom_auth.RECONNECT_ERRORS

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
    FieldSpec(
        "healthPath",
        "Health Check Path",
        "text",
        default="/",
        pattern=r"/[^\s]*",
        pattern_message="Enter a path such as /api/health, without spaces.",
        help="A cheap, read-only GET that needs authentication.",
    ),
    *custom_auth.FIELDS,
)


def normalise(config: dict) -> dict:
    """Pasted input made what the fields expect: a health path gets its leading /, an old Credentials JSON
    is split into the credential fields."""
    if "healthPath" in config:
        config["healthPath"] = rooted_path(config["healthPath"])
    return custom_auth.split_legacy(config, strict=True)


def test_connection(config: dict, context: TestContext) -> TestResult:
    """Authenticate as the auth type says (OAUTH2: a cached or new token), then GET the health path."""
    issued: list[str] = []
    result = _test(config, context, issued)
    return without_secrets(result, credential_values(config) + issued)


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    session = context.http
    name = config.get("name") or "The CRM"
    if problems := check(config):
        message = next(iter(problems.values()))
        return TestResult(False, message, {"field_errors": problems}, error=message)
    creds = custom_auth.credentials(config)
    url = urljoin(config["apiEndpoint"].rstrip("/") + "/", (config.get("healthPath") or "/").lstrip("/"))
    try:
        headers, auth, grant = custom_auth.authenticate(config, creds, context, issued)
        started = time.monotonic()
        response = session.get(url, headers={"Accept": "application/json", **headers}, auth=auth)
        if response.status_code == 401 and grant and grant["fromCache"]:
            # The cached token was revoked before its time: fetch a new one, once.
            headers, auth, grant = custom_auth.authenticate(config, creds, context, issued, fresh=True)
            started = time.monotonic()
            response = session.get(url, headers={"Accept": "application/json", **headers}, auth=auth)
    except custom_auth._Refused as exc:
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


# ----- connecting by consent (OAUTH2_CODE) ------------------------------------------------------------

# How the client authenticates at the administrator's token URL, for the code and every later refresh:
# HTTP Basic, which RFC 6749 2.3.1 requires every server to support (the integration's clientAuth says the same).
CONNECT_AUTH_METHOD = oauth.CLIENT_SECRET_BASIC


def _authorize_url(app: AppSettings) -> str:
    if not app.authorize_url:
        raise ConnectRefused(
            "The console's Custom CRM app has no authorize URL. An administrator must enter it on the OAuth apps page."
        )
    return app.authorize_url


def _code_token_url(app: AppSettings, params: CallbackParams) -> str:
    if not app.token_url:
        raise ConnectRefused(
            "The console's Custom CRM app has no token URL. An administrator must enter it on the OAuth apps page."
        )
    return app.token_url


def _configuration(app: AppSettings, granted: oauth.GrantedToken, params: CallbackParams) -> dict:
    """OAUTH2_CODE at the app's token URL: the app's client and the refresh token, each in its field."""
    if not granted.refresh_token:
        raise ConnectRefused(
            "The CRM issued no refresh token, so the connection could not last. Nothing was saved. Many servers "
            "issue one only for a scope such as offline_access: add it to the app's scopes, then connect again."
        )
    return {
        "authType": "OAUTH2_CODE",
        "tokenUrl": _code_token_url(app, params),
        "clientAuth": "header" if CONNECT_AUTH_METHOD == oauth.CLIENT_SECRET_BASIC else "body",
        "clientId": app.client_id,
        "clientSecret": app.client_secret,
        "refreshToken": granted.refresh_token,
    }


OAUTH = OAuthSpec(
    # No scope unless the administrator enters some: many servers grant a default set, and an empty scope
    # sends no scope parameter at all.
    default_scopes=(),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("authType", "tokenUrl", "clientAuth", "clientId", "clientSecret", "refreshToken"),
    pkce=True,  # RFC 7636 S256; a server without PKCE ignores the challenge
    auth_method=CONNECT_AUTH_METHOD,
    configurable_urls=True,
    draft_fields=("name", "apiEndpoint", "healthPath"),
    console_hint=(
        "In the CRM's developer settings, register an OAuth 2 app (authorization code grant) with the redirect URI "
        "above, then enter its client, its authorize and token URLs, and the scopes it needs (often offline_access "
        "for a refresh token). The client authenticates at the token URL with HTTP Basic; PKCE S256 is sent."
    ),
)


PROVIDER = Provider(
    key="CUSTOM",
    name="Custom CRM",
    description=(
        "Any REST API: API key header, Bearer token, Basic auth, OAuth2 client credentials, or OAuth2 authorization "
        "code (Connect with Custom CRM)."
    ),
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    check=check,
    normalise=normalise,
    upgrade=custom_auth.upgrade,
    refresh=refresh_token,
    uses_oauth=uses_oauth,
    oauth=OAUTH,
)
