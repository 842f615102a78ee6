"""OAuth 2 token requests: authlib builds and reads them, the console's own HTTP session sends them.

authlib's protocol client (`authlib.oauth2.client.OAuth2Client`) takes the session it talks through, so
every token request goes through `context.http` (timeouts, no retried POSTs, bounded bodies, redirect
rules) instead of a session of authlib's own. Access tokens are cached per integration with
`context.tokens` (encrypted at rest) for their lifetime, under a key that changes with the credentials.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client.oauth2_session import OAuth2ClientAuth
from authlib.oauth2.client import OAuth2Client

from core.catalog import TokenCache
from core.http import note_oauth_error
from core.models import utcnow
from core.results import ProviderFailure, RefreshResult

CLIENT_SECRET_BASIC = "client_secret_basic"  # client id and secret in an HTTP Basic header
CLIENT_SECRET_POST = "client_secret_post"  # client id and secret as form fields in the body
_TOKEN_HEADERS = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
_SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token", "signature"})


class _ProtocolClient(OAuth2Client):
    """authlib's OAuth 2 client over a given requests session; client auth signs the prepared request."""

    client_auth_class = OAuth2ClientAuth
    oauth_error_class = OAuthError


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: float | None
    scope: str | None
    # A refresh token the answer issued in place of the one sent (rotation); None when unchanged.
    new_refresh_token: str | None = None
    # The rest of the answer (api_domain, instance_url, token_type, ...), without any token in it.
    extra: dict = field(default_factory=dict)


class TokenError(Exception):
    """The token endpoint issued no token. Holds what the endpoint said, never what was sent to it."""

    def __init__(
        self,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
        cause: requests.RequestException | None = None,
    ):
        self.status, self.error, self.description, self.cause = status, error, description, cause
        super().__init__(self.reason or (f"status {status}" if status else "no token"))

    @property
    def reason(self) -> str | None:
        """The endpoint's own words, short: its description, else its error code."""
        text = self.description or self.error
        return str(text)[:200] if text else None


class TokenRefusal(ProviderFailure):
    """A provider's sentence about a TokenError (a ProviderFailure like any other), with the error kept so a
    token refresh can tell a refused grant from an endpoint that is down."""

    def __init__(self, message: str, details: dict, token_error: TokenError):
        super().__init__(message, details)
        self.token_error = token_error


# OAuth error codes noted for core.integrations.classify: RFC 6749's (section 5.2) and the providers' own.
# Any other is noted as "other": a token endpoint's error field is its own text and could echo anything.
KNOWN_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
        "invalid_code",  # Zoho: a refresh token it no longer knows
        "invalid_client_id",  # Salesforce: an unknown consumer key
        "invalid_client_credentials",  # Salesforce: a wrong consumer secret
        "invalid_client_secret",  # Zoho
        "inactive_user",  # Salesforce
        "inactive_org",  # Salesforce
        "rate_limit_exceeded",  # Salesforce
    }
)


def request_token(
    http: requests.Session,
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    grant_type: str,
    auth_method: str = CLIENT_SECRET_POST,
    refresh_token: str | None = None,
    scope: str | None = None,
) -> IssuedToken:
    """One token request (client_credentials or refresh_token) sent with `http`; raises TokenError.

    An error inside an HTTP 200 answer ({"error": "invalid_code"}, as Zoho sends) is a TokenError too. A
    refusal with an OAuth error code is noted for core.http.observe (every token error passes here), as
    KNOWN_ERRORS spells it, or as "other"."""
    try:
        return _request_token(
            http,
            token_url,
            client_id=client_id,
            client_secret=client_secret,
            grant_type=grant_type,
            auth_method=auth_method,
            refresh_token=refresh_token,
            scope=scope,
        )
    except TokenError as exc:
        if exc.error:
            code = str(exc.error).strip().lower()
            note_oauth_error(code if code in KNOWN_ERRORS else "other")
        raise


def _request_token(
    http: requests.Session,
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    grant_type: str,
    auth_method: str = CLIENT_SECRET_POST,
    refresh_token: str | None = None,
    scope: str | None = None,
) -> IssuedToken:
    """request_token's work: authlib builds the request and reads the answer."""
    client = _ProtocolClient(
        http, client_id=client_id, client_secret=client_secret, token_endpoint_auth_method=auth_method
    )
    answers: list[requests.Response] = []

    def keep(response: requests.Response) -> requests.Response:
        answers.append(response)
        return response

    client.register_compliance_hook("access_token_response", keep)
    client.register_compliance_hook("refresh_token_response", keep)
    params = {"scope": scope} if scope else {}
    try:
        if grant_type == "refresh_token":
            token = client.refresh_token(token_url, refresh_token=refresh_token, headers=dict(_TOKEN_HEADERS), **params)
        else:
            token = client.fetch_token(token_url, grant_type=grant_type, headers=dict(_TOKEN_HEADERS), **params)
    except OAuthError as exc:
        raise TokenError(_status(answers), exc.error, exc.description or None) from None
    except requests.HTTPError as exc:  # a 5xx, or a 4xx whose body is not a JSON object
        status = exc.response.status_code if exc.response is not None else _status(answers)
        raise TokenError(status) from None
    except requests.RequestException as exc:
        raise TokenError(cause=exc) from None
    except (ValueError, TypeError):  # a 2xx body that is not a JSON object, or a malformed expires_in
        raise TokenError(_status(answers)) from None
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenError(_status(answers))
    returned_refresh = token.get("refresh_token")
    rotated = (
        returned_refresh
        if grant_type == "refresh_token" and isinstance(returned_refresh, str) and returned_refresh != refresh_token
        else None
    )
    return IssuedToken(
        access_token=access_token,
        expires_in=_seconds(token.get("expires_in")),
        scope=str(token["scope"]) if token.get("scope") else None,
        new_refresh_token=rotated or None,
        extra={k: v for k, v in token.items() if k not in _SECRET_KEYS},
    )


@dataclass(frozen=True)
class GrantedToken:
    """What an authorization code was exchanged for: the access token and, when issued, a refresh token."""

    issued: IssuedToken
    refresh_token: str | None


def authorization_url(
    url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    code_verifier: str | None = None,
    params: dict[str, str] | None = None,
) -> str:
    """The address the person's browser is sent to for consent, built by authlib (RFC 6749 4.1.1; with a
    code_verifier, an S256 code_challenge per RFC 7636). Holds no secret: the client secret never goes there."""
    client = _ProtocolClient(
        None,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope or None,
        code_challenge_method="S256" if code_verifier else None,
    )
    built, _ = client.create_authorization_url(url, state=state, code_verifier=code_verifier, **(params or {}))
    return built


def exchange_code(
    http: requests.Session,
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None = None,
    auth_method: str = CLIENT_SECRET_POST,
) -> GrantedToken:
    """Exchange an authorization code (grant_type=authorization_code) with `http`; raises TokenError.

    The exact redirect_uri of the authorization request is sent again, as RFC 6749 4.1.3 requires. An
    error in an HTTP 200 answer is a TokenError too, and every OAuth error code is noted as request_token's."""
    client = _ProtocolClient(
        http,
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=auth_method,
        redirect_uri=redirect_uri,
    )
    answers: list[requests.Response] = []

    def keep(response: requests.Response) -> requests.Response:
        answers.append(response)
        return response

    client.register_compliance_hook("access_token_response", keep)
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    try:
        try:
            token = client.fetch_token(
                token_url, grant_type="authorization_code", code=code, headers=dict(_TOKEN_HEADERS), **extra
            )
        except OAuthError as exc:
            raise TokenError(_status(answers), exc.error, exc.description or None) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else _status(answers)
            raise TokenError(status) from None
        except requests.RequestException as exc:
            raise TokenError(cause=exc) from None
        except (ValueError, TypeError):
            raise TokenError(_status(answers)) from None
    except TokenError as exc:
        if exc.error:
            code_seen = str(exc.error).strip().lower()
            note_oauth_error(code_seen if code_seen in KNOWN_ERRORS else "other")
        raise
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenError(_status(answers))
    refresh_token = token.get("refresh_token")
    issued = IssuedToken(
        access_token=access_token,
        expires_in=_seconds(token.get("expires_in")),
        scope=str(token["scope"]) if token.get("scope") else None,
        extra={k: v for k, v in token.items() if k not in _SECRET_KEYS},
    )
    return GrantedToken(issued, refresh_token if isinstance(refresh_token, str) and refresh_token else None)


def _status(answers: list[requests.Response]) -> int | None:
    return answers[-1].status_code if answers else None


def _seconds(value) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


# ----- refresh outcomes (core.integrations.refresh) ---------------------------------------------------

# OAuth errors (RFC 6749 5.2) after which only a person can help: the grant or the client is refused.
RECONNECT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type"})


def refreshed(service: str, expires_in: float | None, rotated: bool = False) -> RefreshResult:
    """A successful refresh of service's access token, which lives expires_in seconds (None: not said)."""
    expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
    message = f"Refreshed the {service} access token"
    message += f"; it expires at {expires_at:%Y-%m-%d %H:%M} UTC." if expires_at else "."
    if rotated:
        message += f" {service} issued a new refresh token, which replaced the stored one."
    return RefreshResult(True, message, expires_at, rotated=rotated)


def refresh_failed(
    message: str, failure: Exception, reconnect_errors: Collection[str] = RECONNECT_ERRORS
) -> RefreshResult:
    """A failed refresh: message is the provider's sentence; failure what it raised (a TokenRefusal when the
    token endpoint issued nothing). needs_reconnect when the endpoint refused with one of reconnect_errors."""
    token_error = getattr(failure, "token_error", None)
    if not isinstance(token_error, TokenError):
        return RefreshResult(False, message, error="bad_answer")
    if token_error.error:
        code = str(token_error.error)[:64]
    elif token_error.status:
        code = f"http_{token_error.status}"
    elif isinstance(token_error.cause, requests.Timeout):
        code = "timeout"
    else:
        code = "unreachable"
    reconnect = code in reconnect_errors
    if not reconnect and not message.rstrip().endswith("."):
        message = message.rstrip() + "."
    if reconnect:
        message += " The stored credentials were kept; the integration needs to be connected again."
    else:
        message += " The stored credentials were kept; the refresh is tried again later."
    return RefreshResult(False, message, needs_reconnect=reconnect, error=code)


# ----- the per-integration cache -------------------------------------------------------------------


def cache_key(kind: str, *parts: str | None) -> str:
    """A cache key that changes whenever any credential changes, and holds none of them.

    Only an intermediate: it is stored solely as a keyed hash (core/tokens.stored_key), since a plain
    digest of a client secret can be tested against guesses offline."""
    digest = hashlib.sha256("\0".join(p or "" for p in parts).encode("utf-8")).hexdigest()
    return f"{kind}:{digest}"


def cached(tokens: TokenCache, key: str) -> dict | None:
    """What `remember` stored under key (an access token and what goes with it), while it lives."""
    raw = tokens.get(key)
    if not raw:
        return None
    try:
        values = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(values, dict) or not isinstance(values.get("access_token"), str):
        return None
    return values


def remember(tokens: TokenCache, key: str, values: dict, expires_in: float | None) -> None:
    """Cache values (with an access_token) for expires_in seconds; without a lifetime nothing is kept."""
    if expires_in:
        tokens.put(key, json.dumps(values), expires_in)


__all__ = [
    "CLIENT_SECRET_BASIC",
    "CLIENT_SECRET_POST",
    "KNOWN_ERRORS",
    "RECONNECT_ERRORS",
    "GrantedToken",
    "IssuedToken",
    "TokenError",
    "TokenRefusal",
    "authorization_url",
    "cache_key",
    "cached",
    "exchange_code",
    "refresh_failed",
    "refreshed",
    "remember",
    "request_token",
]
