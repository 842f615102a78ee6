"""Zoho CRM: an OAuth 2 refresh token (Self Client or server app), proved by reading the organisation.

The access token comes from the account's data centre and names the API domain to use with it. One
refresh token mints at most 10 access tokens per 10 minutes, so each is cached (encrypted, per
integration) for its lifetime and reused by the next test.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec
from core.http import describe_exception, read_json, wait_phrase
from core.results import ProviderFailure, RefreshResult, TestResult, without_secrets

DATA_CENTRES = ("com", "eu", "in", "com.au", "jp", "com.cn", "zohocloud.ca", "sa")
# Where each data centre issues tokens. Canada's accounts server is not under zoho.*.
ACCOUNTS_HOSTS = {dc: f"accounts.zoho.{dc}" for dc in DATA_CENTRES} | {"zohocloud.ca": "accounts.zohocloud.ca"}
# Fixed vendor hosts. Tests point these at a local fake; they are not something a person configures.
ACCOUNTS_BASE = "https://{host}"
TOKEN_PATH = "/oauth/v2/token"
# The token answer's api_domain must be a Zoho API host before the access token is sent to it.
API_DOMAIN_PATTERN = r"https://([a-z0-9-]+\.)*zohoapis\.[a-z.]+"
ORG_PATH = "/crm/v2/org"

FIELDS = (
    FieldSpec(
        "dataCentre",
        "Data Centre",
        "select",
        required=True,
        options=DATA_CENTRES,
        default="com",
        help="Where the Zoho account lives: the ending of the address you sign in at (zoho.com, zoho.eu, ...).",
    ),
    FieldSpec(
        "clientId",
        "Client ID",
        "text",
        required=True,
        placeholder="1000.XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        help="From the Zoho API Console (api-console.zoho.<data centre>): your Self Client or server-based app.",
    ),
    FieldSpec(
        "clientSecret",
        "Client Secret",
        "password",
        required=True,
        sensitive=True,
        help="Shown next to the client ID in the Zoho API Console.",
    ),
    FieldSpec(
        "refreshToken",
        "Refresh Token",
        "password",
        required=True,
        sensitive=True,
        help=(
            "Generated for this client with access_type=offline and at least the scope ZohoCRM.org.READ "
            "(add the module scopes the integration will use: a contact sync needs ZohoCRM.modules.Contacts.ALL, "
            "or ZohoCRM.modules.Leads.ALL when it syncs leads)."
        ),
    ),
)


def _token_url(dc: str) -> str:
    return ACCOUNTS_BASE.format(host=ACCOUNTS_HOSTS[dc]).rstrip("/") + TOKEN_PATH


def _cache_key(config: dict) -> str:
    return oauth.cache_key(
        "zoho", config["dataCentre"], config["clientId"], config["clientSecret"], config["refreshToken"]
    )


def _token_refused(exc: oauth.TokenError, dc: str) -> str:
    if exc.cause is not None:
        return describe_exception(exc.cause, f"Zoho's accounts server ({ACCOUNTS_HOSTS[dc]})")
    error, reason = (exc.error or "").strip(), exc.reason or ""
    if "too many requests" in reason.lower() or error.lower() == "access denied":
        return (
            "Zoho refused to issue another access token for now: a refresh token mints at most 10 per 10 minutes. "
            "Wait ten minutes and test again."
        )
    if error == "invalid_code":
        return (
            f"Zoho did not accept the refresh token (invalid_code). It may be revoked, mistyped, or made in "
            f"another data centre than {dc}: a refresh token only works where it was generated. Generate a new "
            "one for this client in the Zoho API Console."
        )
    if error == "invalid_client":
        return (
            f"Zoho does not know this client ID in the {dc} data centre (invalid_client). Check the client ID "
            "and the data centre."
        )
    if error == "invalid_client_secret":
        return "Zoho did not accept the client secret (invalid_client_secret). Copy it again from the API Console."
    if exc.status and exc.status >= 500:
        return f"Zoho's accounts server is unavailable ({exc.status}). Try again later."
    said = f" ({reason})" if reason else f" (status {exc.status})" if exc.status else ""
    return f"Zoho did not issue an access token{said}. Check the client ID, client secret and refresh token."


def _access(config: dict, context: TestContext, issued: list[str], fresh: bool = False) -> tuple[dict, bool]:
    """({access_token, api_domain, scope}, whether it came from the cache)."""
    key = _cache_key(config)
    if not fresh and (hit := oauth.cached(context.tokens, key)):
        issued.append(hit["access_token"])
        return hit, True
    return _new_token(config, context, issued)[0], False


def _new_token(config: dict, context: TestContext, issued: list[str]) -> tuple[dict, float | None]:
    """A new access token from the data centre (never the cache), then cached: (values, lifetime in seconds).

    Raises ProviderFailure (oauth.TokenRefusal when the accounts server issued nothing)."""
    dc = config["dataCentre"]
    try:
        token = oauth.request_token(
            context.http,
            _token_url(dc),
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            grant_type="refresh_token",
            refresh_token=config["refreshToken"],
            auth_method=oauth.CLIENT_SECRET_POST,
        )
    except oauth.TokenError as exc:
        details = {"stage": "token", "status": exc.status, "error": exc.error}
        raise oauth.TokenRefusal(_token_refused(exc, dc), details, exc) from None
    issued.append(token.access_token)
    api_domain = str(token.extra.get("api_domain") or "").rstrip("/")
    if not re.fullmatch(API_DOMAIN_PATTERN, api_domain):
        shown = urlsplit(api_domain).hostname or "none"
        raise ProviderFailure(
            f"Zoho's token answer named an API domain that is not a Zoho API host ({shown}), so the access "
            "token was not sent there. Check the data centre.",
            {"stage": "token"},
        )
    values = {"access_token": token.access_token, "api_domain": api_domain, "scope": token.scope}
    oauth.remember(context.tokens, _cache_key(config), values, token.expires_in)
    return values, token.expires_in


# Zoho's words for a refused refresh token (its invalid_grant) or client: only a person can repair these.
RECONNECT_ERRORS = oauth.RECONNECT_ERRORS | {"invalid_code", "invalid_client_secret"}


def refresh(config: dict, context: TestContext) -> RefreshResult:
    """A new access token now (the cache bypassed) for the next test to use. Zoho does not rotate refresh tokens.

    Counts against the 10 access tokens a refresh token may mint per 10 minutes, so refresh ahead of expiry
    (an hour), not more often."""
    issued: list[str] = []
    try:
        _, lifetime = _new_token(config, context, issued)
    except ProviderFailure as exc:
        result = oauth.refresh_failed(str(exc), exc, RECONNECT_ERRORS)
    else:
        result = oauth.refreshed("Zoho CRM", lifetime)
    return result.redacted([config.get("clientSecret"), config.get("refreshToken"), *issued])


def _explain(response: requests.Response, scope: str | None) -> str:
    body = read_json(response)
    body = body if isinstance(body, dict) else {}
    code, said = str(body.get("code") or ""), str(body.get("message") or "")[:300]
    if code == "OAUTH_SCOPE_MISMATCH":
        granted = f" The token has: {scope}." if scope else ""
        return (
            "The refresh token lacks the scope to read the organisation (OAUTH_SCOPE_MISMATCH): generate a new "
            f"one that includes ZohoCRM.org.READ.{granted}"
        )
    if code == "NO_PERMISSION":
        return (
            "The Zoho user behind the refresh token may not read the organisation (NO_PERMISSION). Use a token "
            "made by a user whose profile allows it, such as an administrator."
        )
    if code == "INVALID_TOKEN":
        return (
            "Zoho rejected the access token (INVALID_TOKEN). Test again; if it persists, generate a new refresh token."
        )
    if code == "AUTHENTICATION_FAILURE":
        return (
            "Zoho could not authenticate the request (AUTHENTICATION_FAILURE). The refresh token may belong to "
            "another Zoho organisation or data centre; generate a new one."
        )
    if response.status_code == 429 or code == "TOO_MANY_REQUESTS":
        return f"Zoho CRM is rate limiting requests (API credits or concurrency). {wait_phrase(response)}"
    if response.status_code >= 500:
        return f"Zoho CRM is unavailable ({response.status_code}). Try again later."
    detail = f"{code}: {said}" if code and said else code or said
    return f"Zoho CRM answered with status {response.status_code}{f' ({detail})' if detail else ''}."


def _read_org(session: requests.Session, access: dict) -> requests.Response:
    return session.get(
        access["api_domain"] + ORG_PATH,
        headers={"Authorization": f"Zoho-oauthtoken {access['access_token']}", "Accept": "application/json"},
    )


def _is_invalid_token(response: requests.Response) -> bool:
    body = read_json(response)
    return response.status_code == 401 and isinstance(body, dict) and body.get("code") == "INVALID_TOKEN"


def test_connection(config: dict, context: TestContext) -> TestResult:
    """A cached or new access token from the data centre, then GET {api_domain}/crm/v2/org."""
    issued: list[str] = []
    result = _test(config, context, issued)
    return without_secrets(result, [config.get("clientSecret"), config.get("refreshToken"), *issued])


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    try:
        access, from_cache = _access(config, context, issued)
        response = _read_org(context.http, access)
        if from_cache and _is_invalid_token(response):
            access, from_cache = _access(config, context, issued, fresh=True)  # revoked early: one new token
            response = _read_org(context.http, access)
    except ProviderFailure as exc:
        return TestResult(False, str(exc), exc.details, error=str(exc))
    except requests.RequestException as exc:
        message = describe_exception(exc, "Zoho CRM")
        return TestResult(False, message, error=message)
    token_info = {"scope": access.get("scope"), "apiDomain": access["api_domain"], "cached": from_cache}
    if response.status_code != 200:
        message = _explain(response, access.get("scope"))
        body = read_json(response)
        code = body.get("code") if isinstance(body, dict) else None
        return TestResult(False, message, {"status": response.status_code, "code": code, "token": token_info}, message)
    body = read_json(response)
    orgs = body.get("org") if isinstance(body, dict) else None
    org = orgs[0] if isinstance(orgs, list) and orgs and isinstance(orgs[0], dict) else None
    if org is None:
        message = "Zoho CRM answered, but without an organisation. Check the data centre and the token's scopes."
        return TestResult(False, message, {"status": response.status_code, "token": token_info}, error=message)

    licence = org.get("license_details")
    if not isinstance(licence, dict):
        licence = {}
    edition = licence.get("paid_type") or licence.get("trial_type")
    details = {
        "organization": {
            "id": org.get("id"),
            "companyName": org.get("company_name"),
            "primaryEmail": org.get("primary_email"),
            "timeZone": org.get("time_zone"),
            "currency": org.get("currency") or org.get("iso_code"),
            "countryCode": org.get("country_code"),
            "edition": edition,
            "paid": licence.get("paid"),
            "usersLicensed": licence.get("users_license_purchased"),
            "trialExpiry": licence.get("trial_expiry"),
        },
        "token": token_info,
    }
    facts = [f"{edition} edition" if edition else None, org.get("time_zone"), org.get("currency")]
    known = ", ".join(str(f) for f in facts if f)
    about = f"id {org.get('id')}" + (f", {known}" if known else "")
    message = f"Connected to Zoho CRM organisation {org.get('company_name')} ({about})."
    if access.get("scope"):
        message += f" The token allows: {access['scope']}."
    return TestResult(True, message, details)


# ----- connecting by consent (server-based app, access_type=offline) ---------------------------------

# Consent starts at the US accounts server, which sends the person to their own data centre's; the
# callback names that one (accounts-server) and the code is exchanged there.
AUTHORIZE_PATH = "/oauth/v2/auth"
DEFAULT_DATA_CENTRE = "com"


def _authorize_url(app: AppSettings) -> str:
    return ACCOUNTS_BASE.format(host=ACCOUNTS_HOSTS[DEFAULT_DATA_CENTRE]).rstrip("/") + AUTHORIZE_PATH


def _callback_data_centre(params: CallbackParams) -> str:
    """The data centre whose accounts server the callback names; it must be one of Zoho's own."""
    named = params.get("accounts-server")
    if not named:
        return DEFAULT_DATA_CENTRE
    parts = urlsplit(named)
    for dc, host in ACCOUNTS_HOSTS.items():
        if parts.scheme == "https" and parts.hostname == host and parts.port is None and parts.path in ("", "/"):
            return dc
    shown = (parts.hostname or "none")[:100]
    raise ConnectRefused(
        f"The answer named an accounts server that is not Zoho's ({shown}), so the code was not sent there. "
        "Nothing was saved."
    )


def _code_token_url(app: AppSettings, params: CallbackParams) -> str:
    return _token_url(_callback_data_centre(params))


def _configuration(app: AppSettings, granted: oauth.GrantedToken, params: CallbackParams) -> dict:
    api_domain = str(granted.issued.extra.get("api_domain") or "").rstrip("/")
    if not re.fullmatch(API_DOMAIN_PATTERN, api_domain):
        shown = urlsplit(api_domain).hostname or "none"
        raise ConnectRefused(
            f"Zoho's token answer named an API domain that is not Zoho's ({shown}). Nothing was saved."
        )
    if not granted.refresh_token:
        raise ConnectRefused("Zoho issued no refresh token (access_type=offline was refused). Connect again.")
    return {
        "dataCentre": _callback_data_centre(params),
        "clientId": app.client_id,
        "clientSecret": app.client_secret,
        "refreshToken": granted.refresh_token,
    }


OAUTH = OAuthSpec(
    default_scopes=("ZohoCRM.org.READ", "ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("dataCentre", "clientId", "clientSecret", "refreshToken"),
    scope_separator=",",
    extra_params={"access_type": "offline", "prompt": "consent"},
    scope_words={
        "ZohoCRM.org.READ": "see your organisation's name, time zone and licence",
        "ZohoCRM.modules.ALL": "read and change the CRM's records (leads, contacts, deals)",
        "ZohoCRM.settings.READ": "read the CRM's settings (modules and fields)",
    },
    console_hint="api-console.zoho.com > Add Client > Server-based Applications: paste the redirect URI; "
    "enable Multi-DC under Settings for customers in other data centres.",
)


def _contacts(config: dict, context: TestContext, budget_left=None, crm_object: str = "contacts"):
    """The side of a contact sync (providers.zoho_contacts, imported when a sync runs)."""
    from providers.zoho_contacts import ZohoContacts

    return ZohoContacts(config, context, budget_left, crm_object)


PROVIDER = Provider(
    key="ZOHO",
    name="Zoho CRM",
    description="Zoho CRM modules over its v2 API with an OAuth 2 refresh token.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    refresh=refresh,
    oauth=OAUTH,
    contacts=_contacts,
    sync_objects=("contacts", "leads"),
    docs_url="https://www.zoho.com/crm/developer/docs/api/v2/oauth-overview.html",
)
