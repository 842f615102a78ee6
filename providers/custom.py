"""Custom CRM: any REST API, reached with an API key header, Bearer token, Basic auth or OAuth2: client
credentials (OAUTH2), or an authorization code's refresh token (OAUTH2_CODE), from "Connect with Custom CRM"
against the administrator's OAuth app (authorize and token URLs entered on the OAuth apps page) or pasted.

Every secret is inside the Credentials JSON (one encrypted field). OAuth2 access tokens are cached per
integration (context.tokens) for their lifetime; a rotated refresh token replaces the stored one."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec
from core.http import describe_exception, explain_status
from core.results import RefreshResult, TestResult, without_secrets

AUTH_TYPES = ("API_KEY", "BEARER", "BASIC", "OAUTH2", "OAUTH2_CODE")
# The auth types that obtain OAuth access tokens at a token URL.
OAUTH_TYPES = ("OAUTH2", "OAUTH2_CODE")
CLIENT_AUTH = ("header", "body")
# Which keys each auth type needs inside the Credentials JSON.
CREDENTIAL_KEYS = {
    "API_KEY": ("apiKey",),
    "BEARER": ("token",),
    "BASIC": ("username", "password"),
    "OAUTH2": ("clientId", "clientSecret"),
    "OAUTH2_CODE": ("clientId", "clientSecret", "refreshToken"),
}
CREDENTIALS_HELP = (
    'API_KEY: {"apiKey": "..."}; BEARER: {"token": "..."}; BASIC: {"username": "...", "password": "..."}; '
    'OAUTH2: {"clientId": "...", "clientSecret": "..."}; '
    'OAUTH2_CODE: {"clientId": "...", "clientSecret": "...", "refreshToken": "..."} (filled in by Connect with '
    "Custom CRM)"
)
AUTH_TYPE_HELP = (
    "API_KEY: a key in a header. BEARER: a fixed token. BASIC: user name and password. OAUTH2: OAuth2 client "
    "credentials. OAUTH2_CODE: OAuth2 authorization code, refresh token (Connect with Custom CRM, or paste the "
    "refresh token); access tokens are refreshed from it."
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
    FieldSpec(
        "authType",
        "Authentication Type",
        "select",
        required=True,
        options=AUTH_TYPES,
        default="BEARER",
        help=AUTH_TYPE_HELP,
    ),
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
        help="Where OAuth2 access tokens are requested (client credentials, or the refresh token for OAUTH2_CODE).",
        shown_when=("authType", OAUTH_TYPES),
    ),
    FieldSpec(
        "clientAuth",
        "Send client credentials in",
        "select",
        options=CLIENT_AUTH,
        default="header",
        help="header: HTTP Basic (client_secret_basic); body: form fields (client_secret_post).",
        shown_when=("authType", OAUTH_TYPES),
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
    parts = [config.get("tokenUrl"), config.get("clientAuth", "header"), config.get("scope")]
    parts += [creds["clientId"], creds["clientSecret"]]
    if config.get("authType") == "OAUTH2_CODE":
        parts.append(creds.get("refreshToken"))
    return oauth.cache_key("custom", *parts)


def _oauth2_token(
    config: dict, creds: dict, context: TestContext, issued: list[str], fresh: bool = False
) -> tuple[dict, bool]:
    """({access_token, scope}, whether it came from the cache). A cached token lives until its expires_in."""
    key = _token_cache_key(config, creds)
    if not fresh and (hit := oauth.cached(context.tokens, key)):
        issued.append(hit["access_token"])
        return hit, True
    return _new_oauth2_token(config, creds, context, issued).values, False


@dataclass(frozen=True)
class _NewToken:
    values: dict  # {access_token, scope}
    lifetime: float | None  # seconds
    rotated: bool  # a new refresh token replaced the sent one (OAUTH2_CODE)


def _client_auth(config: dict) -> str:
    return oauth.CLIENT_SECRET_BASIC if config.get("clientAuth", "header") == "header" else oauth.CLIENT_SECRET_POST


def _new_oauth2_token(config: dict, creds: dict, context: TestContext, issued: list[str]) -> _NewToken:
    """A new access token (never the cache), then cached: client credentials (OAUTH2), or the refresh token
    (OAUTH2_CODE; a rotated one goes to context.rotate_secret, the whole Credentials JSON being one secret)."""
    code_grant = config.get("authType") == "OAUTH2_CODE"
    try:
        token = oauth.request_token(
            context.http,
            config["tokenUrl"],
            client_id=creds["clientId"],
            client_secret=creds["clientSecret"],
            grant_type="refresh_token" if code_grant else "client_credentials",
            auth_method=_client_auth(config),
            refresh_token=creds["refreshToken"] if code_grant else None,
            scope=None if code_grant else config.get("scope") or None,
        )
    except oauth.TokenError as exc:
        if exc.cause is not None:
            raise _Refused(describe_exception(exc.cause, "The token endpoint"), exc) from None
        if code_grant:
            raise _Refused(_refresh_refused(exc), exc) from None
        raise _Refused(
            f"The token endpoint did not issue a token (status {exc.status}"
            f"{', ' + exc.reason if exc.reason else ''}). Check the client id, secret and token URL.",
            exc,
        ) from None
    issued.append(token.access_token)
    rotated = bool(code_grant and token.new_refresh_token)
    if rotated and token.new_refresh_token:
        issued.append(token.new_refresh_token)
        creds = creds | {"refreshToken": token.new_refresh_token}
        context.rotate_secret("credentials", json.dumps(creds))
    values = {"access_token": token.access_token, "scope": token.scope}
    # Cached under the credentials the next test reads (with a rotated refresh token, the new one's key).
    oauth.remember(context.tokens, _token_cache_key(config, creds), values, token.expires_in)
    return _NewToken(values, token.expires_in, rotated)


def _refresh_refused(exc: oauth.TokenError) -> str:
    """A sentence for a token endpoint that issued nothing for the refresh token (OAUTH2_CODE)."""
    code = str(exc.error or "")[:64]
    said = exc.description[:200] if exc.description else ""
    if code and said and said != code:
        why = f" ({code}: {said})"
    elif code or said:
        why = f" ({code or said})"
    else:
        why = f" (status {exc.status})" if exc.status else ""
    if code.lower() in RECONNECT_ERRORS:
        return (
            f"The token endpoint refused the refresh token{why}: it was revoked or has expired, or the client "
            "changed. Reconnect (Connect with Custom CRM), or paste a new refresh token into the credentials."
        )
    if exc.status and exc.status >= 500:
        return f"The token endpoint is unavailable{why}. Try again later."
    return (
        f"The token endpoint did not issue an access token for the refresh token{why}. "
        "Check the client id, secret and token URL."
    )


def uses_oauth(config: dict) -> bool:
    """Whether a configuration obtains OAuth access tokens (OAUTH2 or OAUTH2_CODE); also the API provider's."""
    return config.get("authType") in OAUTH_TYPES


# A refused client or grant: the client id, secret, scope or refresh token must be fixed by a person.
RECONNECT_ERRORS = oauth.RECONNECT_ERRORS | {"invalid_scope"}


def refresh_token(config: dict, context: TestContext) -> RefreshResult:
    """A new OAuth2 access token now (the cache bypassed) for the next test to use: client credentials, or
    from the refresh token (rotated when the token endpoint issues a new one).

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
        new = _new_oauth2_token(config, creds, context, issued)
    except _Refused as exc:
        result = oauth.refresh_failed(str(exc), exc, RECONNECT_ERRORS)
    else:
        result = oauth.refreshed(name, new.lifetime, new.rotated)
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
    token, from_cache = _oauth2_token(config, creds, context, issued, fresh)  # OAUTH2 or OAUTH2_CODE
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
    """OAUTH2_CODE at the app's token URL: the app's client and the refresh token, in the Credentials JSON."""
    if not granted.refresh_token:
        raise ConnectRefused(
            "The CRM issued no refresh token, so the connection could not last. Nothing was saved. Many servers "
            "issue one only for a scope such as offline_access: add it to the app's scopes, then connect again."
        )
    credentials = {"clientId": app.client_id, "clientSecret": app.client_secret, "refreshToken": granted.refresh_token}
    return {
        "authType": "OAUTH2_CODE",
        "tokenUrl": _code_token_url(app, params),
        "clientAuth": "header" if CONNECT_AUTH_METHOD == oauth.CLIENT_SECRET_BASIC else "body",
        "credentials": json.dumps(credentials),
    }


OAUTH = OAuthSpec(
    # No scope unless the administrator enters some: many servers grant a default set, and an empty scope
    # sends no scope parameter at all.
    default_scopes=(),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("authType", "tokenUrl", "clientAuth", "credentials"),
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
    refresh=refresh_token,
    uses_oauth=uses_oauth,
    oauth=OAUTH,
)
