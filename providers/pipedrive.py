"""Pipedrive: a user's API token for one company, or the console's OAuth app's refresh token (from
"Connect with Pipedrive"), proved by reading that user (`/users/me`).

The token travels in the `x-api-token` header only: the older `?api_token=` form puts it in every
proxy and server log along the way.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec
from core.http import describe_exception, read_json, retry_after_seconds
from core.results import ProviderFailure, RefreshResult, TestResult, without_secrets
from providers.oauth_fields import check_token_or_oauth, oauth_client_fields, uses_oauth

# The company's API host. Tests point this at a local fake; it is not something a person configures.
API_BASE = "https://{domain}.pipedrive.com"
ME_PATH = "/api/v1/users/me"
# Pipedrive's OAuth server (consent and tokens). Tests point this at a local fake.
OAUTH_BASE = "https://oauth.pipedrive.com"
AUTHORIZE_PATH = "/oauth/authorize"
OAUTH_TOKEN_PATH = "/oauth/token"
# The token answer's api_domain must be a company host under pipedrive.com before anything is sent there.
API_DOMAIN_PATTERN = r"https://([A-Za-z0-9][A-Za-z0-9-]{0,62})\.pipedrive\.com"
AUTH_MODES = ("API_TOKEN", "OAUTH")
RATE_LIMIT_HEADERS = (
    ("limit", "x-ratelimit-limit"),
    ("remaining", "x-ratelimit-remaining"),
    ("reset", "x-ratelimit-reset"),
)

FIELDS = (
    FieldSpec(
        "companyDomain",
        "Company Domain",
        "text",
        required=True,
        pattern=r"[A-Za-z0-9][A-Za-z0-9-]{0,62}",
        pattern_message="Only the part before .pipedrive.com, for example acme.",
        placeholder="acme",
        help="The part before .pipedrive.com in the address you open Pipedrive at (or paste that address).",
    ),
    FieldSpec(
        "authMode",
        "Connection",
        "select",
        options=AUTH_MODES,
        default="API_TOKEN",
        help="API_TOKEN: a user's API token. OAUTH: the console's Pipedrive app (Connect with Pipedrive).",
    ),
    FieldSpec(
        "apiToken",
        "API Token",
        "password",
        min_length=20,
        sensitive=True,
        help=(
            "In Pipedrive: your profile menu > Personal preferences > API. Each user has one token per company; "
            "an admin's token can see the whole company."
        ),
    ),
    *oauth_client_fields("Pipedrive"),
)


# A pasted Pipedrive address (acme.pipedrive.com, https://acme.pipedrive.com/deal/1): its first label is the domain.
_PASTED_ADDRESS = re.compile(r"(?:https?://)?([a-z0-9][a-z0-9-]{0,62})\.pipedrive\.com(?:[:/?#].*)?", re.IGNORECASE)


def normalise(config: dict) -> dict:
    """A pasted Pipedrive address in the company domain is reduced to the domain itself (acme)."""
    value = config.get("companyDomain")
    if isinstance(value, str) and (match := _PASTED_ADDRESS.fullmatch(value.strip())):
        config["companyDomain"] = match.group(1).lower()
    return config


def check(config: dict) -> dict[str, str]:
    """An API token, or for OAuth the client and the refresh token."""
    return check_token_or_oauth(config, "apiToken", "API Token is required.")


def _cache_key(config: dict) -> str:
    return oauth.cache_key(
        "pipedrive",
        config.get("companyDomain"),
        config.get("clientId"),
        config.get("clientSecret"),
        config.get("refreshToken"),
    )


def _new_token(config: dict, context: TestContext, issued: list[str]) -> tuple[str, float | None]:
    """A new access token from the refresh token (client id and secret in a Basic header), then cached."""
    try:
        token = oauth.request_token(
            context.http,
            OAUTH_BASE.rstrip("/") + OAUTH_TOKEN_PATH,
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            grant_type="refresh_token",
            refresh_token=config["refreshToken"],
            auth_method=oauth.CLIENT_SECRET_BASIC,
        )
    except oauth.TokenError as exc:
        if exc.cause is not None:
            message = describe_exception(exc.cause, "Pipedrive's OAuth server")
        elif exc.error in oauth.RECONNECT_ERRORS:
            # Pipedrive drops a refresh token unused for 60 days, or when the app's access is removed.
            message = (
                f"Pipedrive refused the refresh token ({exc.error}): the app's access was removed, or the token "
                "went unused for 60 days. Reconnect Pipedrive."
            )
        else:
            said = f" ({exc.reason})" if exc.reason else f" (status {exc.status})" if exc.status else ""
            message = f"Pipedrive did not issue an access token{said}. Connect Pipedrive again if it persists."
        raise oauth.TokenRefusal(message, {"stage": "token", "status": exc.status}, exc) from None
    issued.append(token.access_token)
    if token.new_refresh_token:
        context.rotate_secret("refreshToken", token.new_refresh_token)
        issued.append(token.new_refresh_token)
    oauth.remember(context.tokens, _cache_key(config), {"access_token": token.access_token}, token.expires_in)
    return token.access_token, token.expires_in


def _headers(config: dict, context: TestContext, issued: list[str]) -> dict:
    if not uses_oauth(config):
        return {"x-api-token": config["apiToken"], "Accept": "application/json"}
    hit = oauth.cached(context.tokens, _cache_key(config))
    access = hit["access_token"] if hit else _new_token(config, context, issued)[0]
    issued.append(access)
    return {"Authorization": f"Bearer {access}", "Accept": "application/json"}


def refresh(config: dict, context: TestContext) -> RefreshResult:
    """A new OAuth access token now, for the next test to use."""
    issued: list[str] = []
    try:
        _, lifetime = _new_token(config, context, issued)
    except ProviderFailure as exc:
        result = oauth.refresh_failed(str(exc), exc)
    else:
        result = oauth.refreshed("Pipedrive", lifetime)
    return result.redacted([config.get("clientSecret"), config.get("refreshToken"), *issued])


def _url(domain: str, path: str) -> str:
    return API_BASE.format(domain=domain).rstrip("/") + path


def _rate_limit(response: requests.Response) -> dict:
    return {name: response.headers[header] for name, header in RATE_LIMIT_HEADERS if header in response.headers}


def _said(response: requests.Response) -> str:
    body = read_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:300] if isinstance(error, str) and error.strip() else ""


def _wait(response: requests.Response) -> str:
    seconds = retry_after_seconds(response)
    if seconds is None:
        reset = response.headers.get("x-ratelimit-reset", "").strip()
        seconds = int(reset) if reset.isdigit() else None
    if seconds is None:
        return "Wait a minute and try again."
    return "Try again in a moment." if seconds <= 1 else f"Wait {seconds} seconds and try again."


def _explain(response: requests.Response, domain: str) -> str:
    status, said = response.status_code, _said(response)
    if status == 401:
        return (
            "Pipedrive refused the API token (401): it is wrong or was regenerated. Copy it again from "
            "Personal preferences > API in Pipedrive."
        )
    if status == 402:
        return (
            f"The Pipedrive company account at {domain}.pipedrive.com is not open (402: payment required). "
            "Its trial or subscription has ended; a Pipedrive admin must reactivate it under Billing."
        )
    if status == 403:
        return (
            f"Pipedrive accepted the token but refused access (403{': ' + said if said else ''}). "
            "The user may be deactivated or lack permission; ask a Pipedrive admin."
        )
    if status == 404:
        return f"Pipedrive has no API at {domain}.pipedrive.com (404). Check the company domain."
    if status == 429:
        limit = _rate_limit(response)
        quota = f" (limit {limit['limit']} per window)" if "limit" in limit else ""
        return f"Pipedrive is rate limiting this token{quota}. {_wait(response)}"
    if status >= 500:
        return f"Pipedrive is unavailable ({status}). Try again later."
    return f"Pipedrive answered with status {status}{': ' + said if said else ''}."


def test_connection(config: dict, context: TestContext) -> TestResult:
    """GET /api/v1/users/me on the company's host, the token in the x-api-token header."""
    issued: list[str] = []
    secrets = [config.get("apiToken"), config.get("clientSecret"), config.get("refreshToken")]
    try:
        result = _test(config, context, issued)
    except ProviderFailure as exc:
        result = TestResult(False, str(exc), exc.details, error=str(exc))
    return without_secrets(result, [*secrets, *issued])


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    domain = config["companyDomain"].strip().lower()
    headers = _headers(config, context, issued)
    try:
        response = context.http.get(_url(domain, ME_PATH), headers=headers)
    except requests.RequestException as exc:
        message = describe_exception(exc, f"Pipedrive ({domain}.pipedrive.com)")
        return TestResult(False, message, error=message)
    limits = _rate_limit(response)
    if response.status_code != 200:
        message = _explain(response, domain)
        details = {"status": response.status_code} | ({"rateLimit": limits} if limits else {})
        return TestResult(False, message, details, error=message)
    body = read_json(response)
    user = body.get("data") if isinstance(body, dict) else None
    if not isinstance(user, dict) or "id" not in user:
        message = f"{domain}.pipedrive.com answered, but not with a Pipedrive user. Check the company domain."
        return TestResult(False, message, {"status": response.status_code}, error=message)

    is_admin = bool(user.get("is_admin"))
    details = {
        "user": {
            "id": user.get("id"),
            "name": user.get("name"),
            "email": user.get("email"),
            "isAdmin": is_admin,
            "locale": user.get("locale"),
            "timezone": user.get("timezone_name"),
        },
        "company": {
            "id": user.get("company_id"),
            "name": user.get("company_name"),
            "domain": user.get("company_domain"),
        },
    }
    if limits:
        details["rateLimit"] = limits
    company_domain = str(user.get("company_domain") or "").lower()
    company = user.get("company_name") or company_domain or domain
    if company_domain and company_domain != domain:
        message = (
            f"The token works, but it belongs to {company} ({company_domain}.pipedrive.com), not "
            f"{domain}.pipedrive.com. Enter {company_domain} as the company domain, or use a token from {domain}."
        )
        return TestResult(False, message, details, error=message)
    role = "an admin" if is_admin else "a regular user (sees only what their visibility settings allow)"
    message = f"Connected to {company} ({domain}.pipedrive.com) as {user.get('name')} <{user.get('email')}>, {role}."
    if "remaining" in limits:
        message += f" {limits['remaining']} requests left in the current rate-limit window."
    return TestResult(True, message, details)


# ----- connecting by consent --------------------------------------------------------------------


def _authorize_url(app: AppSettings) -> str:
    return OAUTH_BASE.rstrip("/") + AUTHORIZE_PATH


def _code_token_url(app: AppSettings, params: CallbackParams) -> str:
    return OAUTH_BASE.rstrip("/") + OAUTH_TOKEN_PATH


def _configuration(app: AppSettings, granted: oauth.GrantedToken, params: CallbackParams) -> dict:
    """The company comes from the token answer's api_domain, which must be a pipedrive.com company host."""
    api_domain = str(granted.issued.extra.get("api_domain") or "").rstrip("/")
    match = re.fullmatch(API_DOMAIN_PATTERN, api_domain)
    if match is None:
        shown = urlsplit(api_domain).hostname or "none"
        raise ConnectRefused(
            f"Pipedrive's token answer named a company address that is not Pipedrive's ({shown}). Nothing was saved."
        )
    if not granted.refresh_token:
        raise ConnectRefused("Pipedrive issued no refresh token. Nothing was saved.")
    return {
        "companyDomain": match.group(1).lower(),
        "authMode": "OAUTH",
        "clientId": app.client_id,
        "clientSecret": app.client_secret,
        "refreshToken": granted.refresh_token,
    }


OAUTH = OAuthSpec(
    # Pipedrive's scopes are chosen on the app in its Developer Hub, not in the authorization request.
    default_scopes=(),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("companyDomain", "authMode", "clientId", "clientSecret", "refreshToken"),
    auth_method=oauth.CLIENT_SECRET_BASIC,
    console_hint="developers.pipedrive.com > Developer Hub > your app > OAuth & access scopes: paste the callback "
    "URL and pick the scopes there (Pipedrive takes no scope parameter): a contact sync needs Contacts: full "
    "access (contacts:full), and Leads: full access (leads:full) when it creates leads.",
)


def _contacts(config: dict, context: TestContext, budget_left=None, crm_object: str = "contacts"):
    """The side of a contact sync (providers.pipedrive_contacts, imported when a sync runs)."""
    from providers.pipedrive_contacts import PipedriveContacts

    return PipedriveContacts(config, context, budget_left, crm_object)


PROVIDER = Provider(
    key="PIPEDRIVE",
    name="Pipedrive",
    description="Deals, persons and organisations in a Pipedrive company account.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    check=check,
    normalise=normalise,
    refresh=refresh,
    uses_oauth=uses_oauth,
    oauth=OAUTH,
    contacts=_contacts,
    sync_objects=("contacts", "leads"),
    docs_url="https://developers.pipedrive.com/docs/api/v1/Users#getCurrentUser",
)
