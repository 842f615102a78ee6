"""The Custom CRM's authentication, which the API provider shares: the fields of each auth type (a field per
secret, each sensitive, shown only for its type), the rule that the chosen type has what it needs, what a
request carries, and OAuth2 access tokens (client credentials: OAUTH2; a refresh token: OAUTH2_CODE), cached per
integration (context.tokens) for their lifetime; a rotated refresh token replaces the stored one.

Configurations saved before the fields were split keep every credential in one Credentials JSON (the
``credentials`` field, sensitive and never shown): `credentials` reads either shape, `upgrade` turns the old one
into today's (an edit then saves the new fields), and `split_legacy` does so for submitted input."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from core import oauth
from core.catalog import TestContext
from core.errors import ValidationError
from core.fields import MASK, FieldSpec, is_blank, json_too_deep, validate
from core.http import describe_exception
from core.results import RefreshResult

AUTH_TYPES = ("API_KEY", "BEARER", "BASIC", "OAUTH2", "OAUTH2_CODE")
AUTH_TYPE_LABELS = (
    ("API_KEY", "API key"),
    ("BEARER", "Bearer token"),
    ("BASIC", "Basic"),
    ("OAUTH2", "OAuth 2 client credentials"),
    ("OAUTH2_CODE", "OAuth 2 authorization code"),
)
# The auth types that obtain OAuth access tokens at a token URL.
OAUTH_TYPES = ("OAUTH2", "OAUTH2_CODE")
CLIENT_AUTH = ("header", "body")
CLIENT_AUTH_LABELS = (("header", "HTTP Basic header"), ("body", "Form body"))
# The credential fields each auth type needs (the keys of the old Credentials JSON had the same names).
CREDENTIAL_KEYS = {
    "API_KEY": ("apiKey",),
    "BEARER": ("token",),
    "BASIC": ("username", "password"),
    "OAUTH2": ("clientId", "clientSecret"),
    "OAUTH2_CODE": ("clientId", "clientSecret", "refreshToken"),
}
CREDENTIAL_FIELDS = ("apiKey", "token", "username", "password", "clientId", "clientSecret", "refreshToken")
LEGACY_FIELD = "credentials"
AUTH_TYPE_HELP = (
    "API key: a key in a header. Bearer token: a fixed token. Basic: user name and password. OAuth 2 client "
    "credentials: a client id and secret exchanged for access tokens. OAuth 2 authorization code: a refresh token "
    "(Connect with Custom CRM, or paste one) from which access tokens are refreshed."
)


def _shown(*auth_types: str) -> tuple[str, tuple[str, ...]]:
    return ("authType", auth_types)


FIELDS = (
    FieldSpec(
        "authType",
        "Authentication Type",
        "select",
        required=True,
        options=AUTH_TYPES,
        option_labels=AUTH_TYPE_LABELS,
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
        shown_when=_shown("API_KEY"),
    ),
    FieldSpec("apiKey", "API Key", "password", required=True, sensitive=True, shown_when=_shown("API_KEY")),
    FieldSpec(
        "token",
        "Bearer Token",
        "password",
        required=True,
        sensitive=True,
        help="Sent as Authorization: Bearer <token>.",
        shown_when=_shown("BEARER"),
    ),
    FieldSpec("username", "User Name", "text", required=True, shown_when=_shown("BASIC")),
    FieldSpec("password", "Password", "password", required=True, sensitive=True, shown_when=_shown("BASIC")),
    FieldSpec("clientId", "Client ID", "text", required=True, shown_when=_shown(*OAUTH_TYPES)),
    FieldSpec(
        "clientSecret", "Client Secret", "password", required=True, sensitive=True, shown_when=_shown(*OAUTH_TYPES)
    ),
    FieldSpec(
        "tokenUrl",
        "Token URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://auth.example.com/oauth/token",
        help="Where OAuth 2 access tokens are requested (with the client credentials, or the refresh token).",
        shown_when=_shown(*OAUTH_TYPES),
    ),
    FieldSpec(
        "clientAuth",
        "Send client credentials in",
        "select",
        options=CLIENT_AUTH,
        option_labels=CLIENT_AUTH_LABELS,
        default="header",
        help="HTTP Basic header: client_secret_basic. Form body: client_secret_post.",
        shown_when=_shown(*OAUTH_TYPES),
    ),
    FieldSpec(
        "scope",
        "Scopes",
        "text",
        placeholder="read",
        help="Separated by spaces; empty asks for the client's default scopes.",
        shown_when=_shown("OAUTH2"),
    ),
    FieldSpec(
        "refreshToken",
        "Refresh Token",
        "password",
        required=True,
        sensitive=True,
        help="Filled in by Connect with Custom CRM, or paste one.",
        shown_when=_shown("OAUTH2_CODE"),
    ),
    # Before the fields were split, every credential was here; never shown, read by `credentials`, dropped on save.
    FieldSpec(LEGACY_FIELD, "Credentials (before the fields were split)", "json", sensitive=True, shown_when=_shown()),
)
LABELS = {spec.name: spec.label for spec in FIELDS}
_LEGACY_SPEC = replace(FIELDS[-1], shown_when=None)  # to check an old Credentials JSON someone still sends


def _legacy(raw: object) -> dict:
    """The old Credentials JSON's object (an import may hold the object itself); {} when it cannot be read."""
    if isinstance(raw, str):
        if json_too_deep(raw):
            return {}
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def credentials(config: dict) -> dict[str, str]:
    """What the auth types read: each credential field, or, where it is empty (a configuration saved before the
    fields were split), the same key of the old Credentials JSON."""
    legacy = _legacy(config.get(LEGACY_FIELD))
    found = {}
    for name in CREDENTIAL_FIELDS:
        value = config.get(name)
        if is_blank(value) or value == MASK:
            value = legacy.get(name)
        if isinstance(value, str) and value and value != MASK:
            found[name] = value
    return found


def split_legacy(config: dict, strict: bool = False) -> dict:
    """The configuration with an old Credentials JSON moved into the credential fields (a field already filled
    wins) and the JSON dropped (the mask in its place too). strict (submitted input): a JSON that cannot be read
    is refused with the reason (ValidationError), as the old field refused it."""
    if LEGACY_FIELD not in config:
        return config
    raw = config.pop(LEGACY_FIELD)
    problem = validate((_LEGACY_SPEC,), {LEGACY_FIELD: raw}).get(LEGACY_FIELD) if strict and raw != MASK else None
    if problem:
        raise ValidationError({LEGACY_FIELD: problem})
    legacy = _legacy(raw)
    for name in CREDENTIAL_FIELDS:
        if (is_blank(config.get(name)) or config.get(name) == MASK) and isinstance(legacy.get(name), str):
            config[name] = legacy[name]
    return config


def upgrade(config: dict) -> dict:
    """A decrypted stored configuration in today's shape (Provider.upgrade)."""
    return split_legacy(config)


def check(config: dict) -> dict[str, str]:
    """The chosen auth type has each credential it needs: {field: sentence} for the missing ones."""
    auth_type = config.get("authType")
    needed = CREDENTIAL_KEYS.get(auth_type, ()) if isinstance(auth_type, str) else ()
    found = credentials(config)
    kind = dict(AUTH_TYPE_LABELS).get(str(auth_type), str(auth_type))
    return {name: f"Enter the {LABELS[name].lower()}: {kind} needs it." for name in needed if name not in found}


def credential_values(config: dict) -> list[str]:
    """Every credential (each field, and every string of an old Credentials JSON), to keep out of results."""
    values = [v for v in credentials(config).values()]
    values += [v for v in _legacy(config.get(LEGACY_FIELD)).values() if isinstance(v, str) and v]
    return values


def uses_oauth(config: dict) -> bool:
    """Whether a configuration obtains OAuth access tokens (OAUTH2 or OAUTH2_CODE)."""
    return config.get("authType") in OAUTH_TYPES


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
    (OAUTH2_CODE; a rotated one goes to context.rotate_secret as the refreshToken field)."""
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
        context.rotate_secret("refreshToken", token.new_refresh_token)
    values = {"access_token": token.access_token, "scope": token.scope}
    # Cached under the credentials the next test reads (with a rotated refresh token, the new one's key).
    oauth.remember(context.tokens, _token_cache_key(config, creds), values, token.expires_in)
    return _NewToken(values, token.expires_in, rotated)


# A refused client or grant: the client id, secret, scope or refresh token must be fixed by a person.
RECONNECT_ERRORS = oauth.RECONNECT_ERRORS | {"invalid_scope"}


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
            "changed. Reconnect (Connect with Custom CRM), or paste a new refresh token into its field."
        )
    if exc.status and exc.status >= 500:
        return f"The token endpoint is unavailable{why}. Try again later."
    return (
        f"The token endpoint did not issue an access token for the refresh token{why}. "
        "Check the client id, secret and token URL."
    )


def refresh_token(config: dict, context: TestContext) -> RefreshResult:
    """A new OAuth2 access token now (the cache bypassed) for the next test to use: client credentials, or
    from the refresh token (rotated when the token endpoint issues a new one). The API provider's too."""
    name = config.get("name") or "OAuth2"
    if not uses_oauth(config):
        return RefreshResult(False, f"{name} does not use OAuth2, so it has no token to refresh.", error="not_oauth")
    if problems := check(config):
        message = next(iter(problems.values())) + " Edit the integration, enter it and save."
        return RefreshResult(False, message, needs_reconnect=True, error="invalid_configuration")
    issued: list[str] = []
    try:
        new = _new_oauth2_token(config, credentials(config), context, issued)
    except _Refused as exc:
        result = oauth.refresh_failed(str(exc), exc, RECONNECT_ERRORS)
    else:
        result = oauth.refreshed(name, new.lifetime, new.rotated)
    return result.redacted(credential_values(config) + issued)


def authenticate(
    config: dict, creds: dict, context: TestContext, issued: list[str], fresh: bool = False
) -> tuple[dict, tuple | None, dict | None]:
    """(headers, requests auth, for OAuth what the token grants: {scope, fromCache}); creds: credentials(config)."""
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
