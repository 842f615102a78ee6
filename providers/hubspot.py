"""HubSpot: a private app's access token, or an OAuth app's refresh token (from "Connect with HubSpot"),
proved by reading the account's details. With OAuth the access token (30 minutes) is cached per
integration, encrypted, and refreshed ahead of its expiry."""

from __future__ import annotations

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec
from core.http import describe_exception, note_oauth_error, read_json, wait_phrase
from core.results import ProviderFailure, RefreshResult, TestResult, without_secrets
from providers.oauth_fields import check_token_or_oauth, oauth_client_fields, uses_oauth

# HubSpot's API host. Tests point this at a local fake; it is not something a person configures.
API_BASE = "https://api.hubapi.com"
DETAILS_PATH = "/account-info/v3/details"
USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"
OAUTH_TOKEN_PATH = "/oauth/v1/token"
# Where a person consents. Tests point this at a local fake.
AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
AUTH_MODES = ("PRIVATE_APP", "OAUTH")

FIELDS = (
    FieldSpec(
        "authMode",
        "Connection",
        "select",
        options=AUTH_MODES,
        default="PRIVATE_APP",
        help="PRIVATE_APP: a private app's access token. OAUTH: the console's HubSpot app (Connect with HubSpot).",
    ),
    FieldSpec(
        "accessToken",
        "Private App Access Token",
        "password",
        min_length=20,
        sensitive=True,
        placeholder="pat-na1-…",
        help=(
            "In HubSpot: Settings > Integrations > Private apps (Legacy apps) > your app > Auth > Access token. "
            "It starts with pat-."
        ),
    ),
    *oauth_client_fields("HubSpot"),
)


def check(config: dict) -> dict[str, str]:
    """A private app needs its access token; OAuth needs the client and the refresh token."""
    return check_token_or_oauth(config, "accessToken", "Private App Access Token is required.")


def _url(path: str) -> str:
    return API_BASE.rstrip("/") + path


def _error_body(response: requests.Response) -> dict:
    body = read_json(response)
    return body if isinstance(body, dict) else {}


def _required_scopes(body: dict) -> list[str]:
    """The scopes a MISSING_SCOPES answer names, from errors[].context (granular or classic)."""
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes", "requiredScope"):
            values = context.get(key)
            for scope in values if isinstance(values, list) else [values] if isinstance(values, str) else []:
                if isinstance(scope, str) and scope not in scopes:
                    scopes.append(scope)
    return scopes


def _hubspot_message(body: dict) -> str:
    message = body.get("message")
    return str(message)[:300] if isinstance(message, str) and message.strip() else ""


def _explain(response: requests.Response) -> str:
    status, body = response.status_code, _error_body(response)
    category, said = body.get("category"), _hubspot_message(body)
    if status == 401:
        return (
            "HubSpot refused the access token (401): it is wrong, expired or was rotated. Copy the current token "
            "from Settings > Integrations > Private apps > your app > Auth, and save it here."
        )
    if status == 403 and category == "MISSING_SCOPES":
        scopes = _required_scopes(body)
        needed = f"it needs {', '.join(scopes)}" if scopes else (said or "HubSpot did not say which")
        return (
            f"The private app lacks a scope this check needs ({needed}). Add the scope on the app's Scopes tab, "
            "commit the change, and test again."
        )
    if status == 403:
        return (
            f"HubSpot refused access (403{': ' + said if said else ''}). Check the app and the account it belongs to."
        )
    if status == 429:
        if body.get("policyName") == "DAILY":
            return (
                "This HubSpot account has used its daily API allowance (429, daily limit). "
                "It resets at midnight in the account's time zone."
            )
        return f"HubSpot is rate limiting this app (429{', ' + category if category else ''}). {wait_phrase(response)}"
    if status >= 500:
        return f"HubSpot is unavailable ({status}). Try again later; status.hubspot.com shows incidents."
    return f"HubSpot answered with status {status}{': ' + said if said else ''}."


def _daily_usage(session: requests.Session, headers: dict) -> dict:
    """Today's API calls for private apps, when the token may read them. Never fails the test."""
    try:
        response = session.get(_url(USAGE_PATH), headers=headers)
    except requests.RequestException as exc:
        return {"available": False, "reason": describe_exception(exc, "HubSpot")}
    body = read_json(response)
    results = body.get("results") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(results, list) or not results:
        reason = f"not readable with this token ({response.status_code})"
        if response.status_code == 403 and (scopes := _required_scopes(_error_body(response))):
            reason += f"; it needs {', '.join(scopes)}"
        return {"available": False, "reason": reason}
    first = next((r for r in results if isinstance(r, dict)), {})
    used, limit = first.get("currentUsage"), first.get("usageLimit")
    usage = {"available": True, "name": first.get("name"), "used": used, "limit": limit}
    if isinstance(used, int) and isinstance(limit, int):
        usage["remaining"] = max(0, limit - used)
    if first.get("resetsAt"):
        usage["resetsAt"] = first["resetsAt"]
    return usage


def _cache_key(config: dict) -> str:
    return oauth.cache_key("hubspot", config.get("clientId"), config.get("clientSecret"), config.get("refreshToken"))


def _token_refused(exc: oauth.TokenError) -> str:
    if exc.cause is not None:
        return describe_exception(exc.cause, "HubSpot's token endpoint")
    if exc.status and exc.status >= 500:
        return f"HubSpot's token endpoint is unavailable ({exc.status}). Try again later."
    said = f" ({exc.reason})" if exc.reason else f" (status {exc.status})" if exc.status else ""
    return f"HubSpot did not issue an access token{said}. The refresh token may be revoked: connect HubSpot again."


def _new_token(config: dict, context: TestContext, issued: list[str]) -> tuple[str, float | None]:
    """A new access token from the refresh token (never the cache), then cached."""
    try:
        token = oauth.request_token(
            context.http,
            _url(OAUTH_TOKEN_PATH),
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            grant_type="refresh_token",
            refresh_token=config["refreshToken"],
        )
    except oauth.TokenError as exc:
        if exc.status == 400 and exc.error is None and exc.cause is None:
            # HubSpot refuses a revoked refresh token (app uninstalled, access removed) or an unknown client
            # with 400 and {status: BAD_REFRESH_TOKEN | BAD_CLIENT_ID}, not RFC 6749's error field: a
            # refused grant, after which only a new consent helps.
            note_oauth_error("invalid_grant")
            exc = oauth.TokenError(400, "invalid_grant", exc.reason)
            message = (
                "HubSpot refused the refresh token (400): the app was uninstalled or its access removed. "
                "Reconnect HubSpot."
            )
            raise oauth.TokenRefusal(message, {"stage": "token", "status": 400}, exc) from None
        raise oauth.TokenRefusal(_token_refused(exc), {"stage": "token", "status": exc.status}, exc) from None
    issued.append(token.access_token)
    if token.new_refresh_token:
        context.rotate_secret("refreshToken", token.new_refresh_token)
        issued.append(token.new_refresh_token)
    oauth.remember(context.tokens, _cache_key(config), {"access_token": token.access_token}, token.expires_in)
    return token.access_token, token.expires_in


def _access_token(config: dict, context: TestContext, issued: list[str]) -> str:
    if not uses_oauth(config):
        return config["accessToken"]
    if hit := oauth.cached(context.tokens, _cache_key(config)):
        issued.append(hit["access_token"])
        return hit["access_token"]
    return _new_token(config, context, issued)[0]


def refresh(config: dict, context: TestContext) -> RefreshResult:
    """A new OAuth access token now, for the next test to use."""
    issued: list[str] = []
    try:
        _, lifetime = _new_token(config, context, issued)
    except ProviderFailure as exc:
        result = oauth.refresh_failed(str(exc), exc)
    else:
        result = oauth.refreshed("HubSpot", lifetime)
    return result.redacted([config.get("clientSecret"), config.get("refreshToken"), *issued])


def test_connection(config: dict, context: TestContext) -> TestResult:
    """GET /account-info/v3/details with the token, then today's API usage when the token may read it."""
    issued: list[str] = []
    secrets = [config.get("accessToken"), config.get("clientSecret"), config.get("refreshToken")]
    try:
        result = _test(config, context, issued)
    except ProviderFailure as exc:
        result = TestResult(False, str(exc), exc.details, error=str(exc))
    return without_secrets(result, [*secrets, *issued])


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    session = context.http
    headers = {"Authorization": f"Bearer {_access_token(config, context, issued)}", "Accept": "application/json"}
    try:
        response = session.get(_url(DETAILS_PATH), headers=headers)
    except requests.RequestException as exc:
        message = describe_exception(exc, "HubSpot")
        return TestResult(False, message, error=message)
    if response.status_code != 200:
        message = _explain(response)
        details: dict[str, object] = {"status": response.status_code}
        if response.status_code == 403 and (scopes := _required_scopes(_error_body(response))):
            details["missingScopes"] = scopes
        return TestResult(False, message, details, error=message)
    account = read_json(response)
    if not isinstance(account, dict) or "portalId" not in account:
        message = "HubSpot answered, but not with account details. Check the token is a HubSpot private app token."
        return TestResult(False, message, {"status": response.status_code}, error=message)

    portal = {
        key: account.get(key)
        for key in ("portalId", "accountType", "timeZone", "companyCurrency", "dataHostingLocation", "uiDomain")
    }
    usage = _daily_usage(session, headers)
    details = {"account": portal, "dailyApiUsage": usage}
    limit_headers = {
        name: response.headers[header]
        for name, header in (("limit", "X-HubSpot-RateLimit-Max"), ("remaining", "X-HubSpot-RateLimit-Remaining"))
        if header in response.headers
    }
    if limit_headers:
        details["rateLimit"] = limit_headers

    facts = [str(portal["accountType"]).lower() + " account" if portal["accountType"] else None]
    facts += [f"data hosted in {portal['dataHostingLocation']}" if portal["dataHostingLocation"] else None]
    facts += [f"time zone {portal['timeZone']}" if portal["timeZone"] else None]
    facts += [f"currency {portal['companyCurrency']}" if portal["companyCurrency"] else None]
    where = f" at {portal['uiDomain']}" if portal["uiDomain"] else ""
    known = ", ".join(f for f in facts if f)
    message = f"Connected to HubSpot portal {portal['portalId']}{where}{f' ({known})' if known else ''}."
    if usage.get("available") and "remaining" in usage:
        message += f" {usage['remaining']:,} of {usage['limit']:,} daily API calls left."
    else:
        message += " Daily API usage is not visible to this token."
    return TestResult(True, message, details)


# ----- connecting by consent --------------------------------------------------------------------


def _authorize_url(app: AppSettings) -> str:
    return AUTHORIZE_URL


def _code_token_url(app: AppSettings, params: CallbackParams) -> str:
    return _url(OAUTH_TOKEN_PATH)


def _configuration(app: AppSettings, granted: oauth.GrantedToken, params: CallbackParams) -> dict:
    if not granted.refresh_token:
        raise ConnectRefused("HubSpot issued no refresh token, so the connection could not last. Nothing was saved.")
    return {
        "authMode": "OAUTH",
        "clientId": app.client_id,
        "clientSecret": app.client_secret,
        "refreshToken": granted.refresh_token,
    }


OAUTH = OAuthSpec(
    # contacts.write: a contact sync into HubSpot (providers/hubspot_contacts.py) creates and updates contacts.
    default_scopes=(
        "oauth",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.companies.read",
        "crm.objects.deals.read",
    ),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("authMode", "clientId", "clientSecret", "refreshToken"),
    scope_words={
        "oauth": "connect to your HubSpot account",
        "crm.objects.contacts.read": "read your contacts",
        "crm.objects.contacts.write": "create and change contacts",
        "crm.objects.companies.read": "read your companies",
        "crm.objects.companies.write": "create and change companies",
        "crm.objects.deals.read": "read your deals",
        "crm.objects.deals.write": "create and change deals",
    },
    console_hint="developers.hubspot.com > your app > Auth: paste the redirect URL and select the same scopes.",
)


def _contacts(config: dict, context: TestContext, budget_left=None, crm_object: str = "contacts"):
    """HubSpot's side of a contact sync (providers.hubspot_contacts, imported when a sync runs); contacts
    only (PROVIDER.sync_objects)."""
    from providers.hubspot_contacts import HubSpotContacts

    return HubSpotContacts(config, context, budget_left)


PROVIDER = Provider(
    key="HUBSPOT",
    name="HubSpot",
    description="Contacts, companies and deals through a HubSpot private app.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    check=check,
    refresh=refresh,
    uses_oauth=uses_oauth,
    oauth=OAUTH,
    contacts=_contacts,
    docs_url="https://developers.hubspot.com/docs/api/private-apps",
)
