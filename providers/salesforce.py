"""Salesforce: a connected app's OAuth 2 credentials, proved by reading the user and the org's API limits.

With a refresh token the refresh-token flow is used; without one, the client-credentials flow (the
connected app's "Run As" user). A rotated refresh token in the answer replaces the stored one. The
access token is cached per integration (encrypted) and a revoked one is replaced once.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from core import oauth
from core.catalog import Provider, TestContext
from core.connect.spec import AppSettings, CallbackParams, ConnectRefused, OAuthSpec
from core.fields import FieldSpec
from core.http import describe_exception, read_json
from core.results import ProviderFailure, RefreshResult, TestResult, without_secrets

# The token endpoint lives on the org's My Domain host. Tests point this at a local fake; the host
# itself comes from the My Domain URL a person enters.
LOGIN_BASE = "https://{host}"
TOKEN_PATH = "/services/oauth2/token"
USERINFO_PATH = "/services/oauth2/userinfo"
VERSIONS_PATH = "/services/data/"
# The token answer's instance_url must be a Salesforce host before the access token is sent to it.
INSTANCE_URL_PATTERN = r"https://[A-Za-z0-9.-]+\.(salesforce\.com|force\.com|salesforce\.mil|sfcrmproducts\.cn)"
FALLBACK_API_VERSION = "62.0"  # when /services/data/ cannot be read
# Salesforce's token answer has no expires_in; sessions last at least 15 minutes (the shortest
# timeout an org can set), so a token is reused for that long, and replaced early if revoked.
DEFAULT_SESSION_SECONDS = 15 * 60

FIELDS = (
    FieldSpec(
        "instanceUrl",
        "My Domain URL",
        "url",
        required=True,
        pattern=r"https://[A-Za-z0-9.-]+\.my\.salesforce\.com",
        pattern_message="Use your My Domain address, like https://acme.my.salesforce.com.",
        placeholder="https://acme.my.salesforce.com",
        help="Setup > My Domain > Current My Domain URL. Sandboxes look like acme--dev.sandbox.my.salesforce.com.",
    ),
    FieldSpec(
        "clientId",
        "Consumer Key (client id)",
        "text",
        required=True,
        help="Setup > App Manager > your connected app > View > Manage Consumer Details.",
    ),
    FieldSpec(
        "clientSecret",
        "Consumer Secret",
        "password",
        required=True,
        sensitive=True,
        help="Shown beside the consumer key under Manage Consumer Details.",
    ),
    FieldSpec(
        "refreshToken",
        "Refresh Token",
        "password",
        sensitive=True,
        help=(
            "Optional. A refresh token from authorizing the connected app (scopes api and refresh_token). "
            "Leave empty to use the client-credentials flow, which needs a Run As user on the connected app."
        ),
    ),
)


def _flow(config: dict) -> str:
    return "refresh_token" if config.get("refreshToken") else "client_credentials"


def _token_url(config: dict) -> str:
    host = urlsplit(config["instanceUrl"]).hostname or ""
    return LOGIN_BASE.format(host=host).rstrip("/") + TOKEN_PATH


def _cache_key(config: dict, refresh_token: str | None) -> str:
    return oauth.cache_key(
        "salesforce", config["instanceUrl"], config["clientId"], config["clientSecret"], refresh_token
    )


def _token_refused(exc: oauth.TokenError, flow: str) -> str:
    if exc.cause is not None:
        return describe_exception(exc.cause, "Salesforce's token endpoint (the My Domain URL)")
    error, reason = exc.error or "", (exc.reason or "").lower()
    if error == "invalid_grant" and flow == "client_credentials":
        return (
            f"Salesforce refused the client-credentials flow ({exc.reason or error}). Enable it on the "
            "connected app and choose a Run As user, or enter a refresh token."
        )
    if error == "invalid_grant":
        return (
            "Salesforce did not accept the refresh token (invalid_grant): it was revoked, expired under the "
            "connected app's refresh token policy, or belongs to another org. Authorize the app again and enter "
            "the new refresh token."
        )
    if error in ("invalid_client_id", "invalid_client") or "client identifier" in reason:
        return (
            f"Salesforce does not know this consumer key ({error}). Check it, and that the connected app is in "
            "this org (new connected apps take up to 10 minutes to become usable)."
        )
    if error == "invalid_client_credentials" or "client secret" in reason:
        return f"Salesforce did not accept the consumer secret ({error}). Copy it again from the connected app."
    if error == "unsupported_grant_type":
        return (
            f"This connected app does not allow the {flow.replace('_', '-')} flow (unsupported_grant_type). "
            "Enable it in the connected app's OAuth settings."
        )
    if exc.status and exc.status >= 500:
        return f"Salesforce's token endpoint is unavailable ({exc.status}). Try again later."
    said = (
        f" ({error}: {exc.reason})" if error and exc.reason and exc.reason != error else f" ({error})" if error else ""
    )
    status = "" if said else f" (status {exc.status})" if exc.status else ""
    return (
        f"Salesforce did not issue an access token{said or status}. Check the My Domain URL, consumer key and secret."
    )


def _access(config: dict, context: TestContext, issued: list[str], fresh: bool = False) -> tuple[dict, bool]:
    """({access_token, instance_url, scope}, whether it came from the cache)."""
    key = _cache_key(config, config.get("refreshToken"))
    if not fresh and (hit := oauth.cached(context.tokens, key)):
        issued.append(hit["access_token"])
        return hit, True
    return _new_token(config, context, issued)[0], False


def _new_token(config: dict, context: TestContext, issued: list[str]) -> tuple[dict, float]:
    """A new access token from the token endpoint (never the cache), then cached: (values, lifetime in seconds).

    A rotated refresh token is handed to context.rotate_secret. Raises ProviderFailure (oauth.TokenRefusal
    when the endpoint issued nothing)."""
    flow = _flow(config)
    try:
        token = oauth.request_token(
            context.http,
            _token_url(config),
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            grant_type=flow,
            refresh_token=config.get("refreshToken") or None,
            auth_method=oauth.CLIENT_SECRET_POST,
        )
    except oauth.TokenError as exc:
        details = {"stage": "token", "status": exc.status, "error": exc.error}
        raise oauth.TokenRefusal(_token_refused(exc, flow), details, exc) from None
    issued += [token.access_token] + ([token.new_refresh_token] if token.new_refresh_token else [])
    instance_url = str(token.extra.get("instance_url") or "").rstrip("/")
    if not re.fullmatch(INSTANCE_URL_PATTERN, instance_url):
        shown = urlsplit(instance_url).hostname or "none"
        raise ProviderFailure(
            f"Salesforce's token answer named an instance that is not a Salesforce host ({shown}), so the access "
            "token was not sent there. Check the My Domain URL.",
            {"stage": "token"},
        )
    values = {"access_token": token.access_token, "instance_url": instance_url, "scope": token.scope}
    key = _cache_key(config, config.get("refreshToken"))
    if token.new_refresh_token:
        # Refresh token rotation: the old one stops working, so the new one replaces it (encrypted).
        context.rotate_secret("refreshToken", token.new_refresh_token)
        key = _cache_key(config, token.new_refresh_token)
        values["rotated"] = True
    lifetime = token.expires_in or DEFAULT_SESSION_SECONDS
    oauth.remember(context.tokens, key, values, lifetime)
    return values, lifetime


# A person must act: the refresh token or the connected app is refused, or the user or org is inactive.
RECONNECT_ERRORS = oauth.RECONNECT_ERRORS | {
    "invalid_client_id",
    "invalid_client_credentials",
    "inactive_user",
    "inactive_org",
}


def refresh(config: dict, context: TestContext) -> RefreshResult:
    """A new access token now (the cache bypassed) for the next test to use; a rotated refresh token is stored.

    With a refresh token this exercises it, so a connected app's "expire if not used for" policy never lapses.
    """
    issued: list[str] = []
    try:
        values, lifetime = _new_token(config, context, issued)
    except ProviderFailure as exc:
        result = oauth.refresh_failed(str(exc), exc, RECONNECT_ERRORS)
    else:
        result = oauth.refreshed("Salesforce", lifetime, rotated=bool(values.get("rotated")))
    return result.redacted([config.get("clientSecret"), config.get("refreshToken"), *issued])


def _errors(response: requests.Response) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's [{message, errorCode}] or an OAuth {error, error_description}."""
    body = read_json(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode") or ""), str(body[0].get("message") or "")[:300]
    if isinstance(body, dict):
        return str(body.get("errorCode") or body.get("error") or ""), str(
            body.get("message") or body.get("error_description") or ""
        )[:300]
    return "", ""


def _usage(response: requests.Response) -> dict | None:
    """Sforce-Limit-Info: api-usage=used/limit."""
    match = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("Sforce-Limit-Info", ""))
    return {"used": int(match.group(1)), "limit": int(match.group(2))} if match else None


def _limit_reached(usage: dict | None) -> str:
    counted = f", {usage['used']:,} of {usage['limit']:,} requests used" if usage else ""
    return (
        f"Daily API limit reached for this Salesforce org (REQUEST_LIMIT_EXCEEDED{counted}). The credentials "
        "work, but Salesforce refuses API calls until usage over the last 24 hours falls below the allocation. "
        "Test again later, or raise the allocation with Salesforce."
    )


def _explain(response: requests.Response, usage: dict | None) -> str:
    code, said = _errors(response)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return _limit_reached(usage)
    if response.status_code == 401:
        return (
            f"Salesforce rejected the session ({code or 'INVALID_SESSION_ID'}). The connected app's policies may "
            "revoke tokens (IP restrictions, session timeout); test again, and check the app's OAuth policies."
        )
    if response.status_code == 403:
        return (
            f"Salesforce refused access ({code or 403}{': ' + said if said else ''}). The user needs the "
            "'API Enabled' permission, and the connected app the 'api' scope."
        )
    if response.status_code >= 500:
        status = response.status_code
        return f"Salesforce is unavailable ({status}). Try again later; status.salesforce.com shows incidents."
    return f"Salesforce answered with status {response.status_code}{f' ({code}: {said})' if code else ''}."


def _bearer(access: dict) -> dict:
    return {"Authorization": f"Bearer {access['access_token']}", "Accept": "application/json"}


def _newest_version(session: requests.Session, instance_url: str) -> tuple[str, bool]:
    """(newest API version, whether it was read from the org). /services/data/ needs no authentication."""
    try:
        response = session.get(instance_url + VERSIONS_PATH, headers={"Accept": "application/json"})
    except requests.RequestException:
        return FALLBACK_API_VERSION, False
    body = read_json(response)
    versions = []
    for entry in body if response.status_code == 200 and isinstance(body, list) else []:
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(version, str) and re.fullmatch(r"\d+\.\d+", version):
            versions.append(version)
    if not versions:
        return FALLBACK_API_VERSION, False
    return max(versions, key=lambda v: tuple(int(p) for p in v.split("."))), True


def test_connection(config: dict, context: TestContext) -> TestResult:
    """A cached or new access token, then the user (userinfo) and the org's limits on instance_url."""
    issued: list[str] = []
    result = _test(config, context, issued)
    return without_secrets(result, [config.get("clientSecret"), config.get("refreshToken"), *issued])


def _test(config: dict, context: TestContext, issued: list[str]) -> TestResult:
    session, flow = context.http, _flow(config)
    try:
        access, from_cache = _access(config, context, issued)
        userinfo = session.get(access["instance_url"] + USERINFO_PATH, headers=_bearer(access))
        if userinfo.status_code == 401 and from_cache:
            access, from_cache = _access(config, context, issued, fresh=True)  # revoked early: one new token
            userinfo = session.get(access["instance_url"] + USERINFO_PATH, headers=_bearer(access))
    except ProviderFailure as exc:
        return TestResult(False, str(exc), exc.details | {"flow": flow}, error=str(exc))
    except requests.RequestException as exc:
        message = describe_exception(exc, "Salesforce")
        return TestResult(False, message, {"flow": flow}, error=message)
    usage = _usage(userinfo)
    token_info = {"flow": flow, "scope": access.get("scope"), "instanceUrl": access["instance_url"]}
    if userinfo.status_code != 200:
        message = _explain(userinfo, usage)
        details = token_info | {"status": userinfo.status_code, "errorCode": _errors(userinfo)[0] or None}
        if _errors(userinfo)[0] == "REQUEST_LIMIT_EXCEEDED":
            details["limitReached"] = True
        return TestResult(False, message, details, error=message)
    user = read_json(userinfo)
    if not isinstance(user, dict) or not user.get("organization_id"):
        message = "Salesforce answered, but without the user's identity. Check the My Domain URL."
        return TestResult(False, message, token_info, error=message)

    version, listed = _newest_version(session, access["instance_url"])
    details = token_info | {
        "organizationId": user.get("organization_id"),
        "user": {
            "id": user.get("user_id"),
            "username": user.get("preferred_username"),
            "email": user.get("email"),
            "name": user.get("name"),
        },
        "apiVersion": version,
        "apiVersionListed": listed,
    }
    try:
        limits = session.get(f"{access['instance_url']}/services/data/v{version}/limits", headers=_bearer(access))
    except requests.RequestException as exc:
        details["dailyApiRequests"] = {"available": False, "reason": describe_exception(exc, "Salesforce")}
        limits = None
    if limits is not None:
        usage = _usage(limits) or usage
        code = _errors(limits)[0] if limits.status_code != 200 else ""
        if code == "REQUEST_LIMIT_EXCEEDED":
            message = _limit_reached(usage)
            details |= {"limitReached": True, "status": limits.status_code, "errorCode": code, "apiUsage": usage}
            return TestResult(False, message, details, error=message)
        if limits.status_code == 401:
            message = _explain(limits, usage)
            return TestResult(False, message, details | {"status": 401, "errorCode": code or None}, error=message)
        body = read_json(limits) if limits.status_code == 200 else None
        daily = body.get("DailyApiRequests") if isinstance(body, dict) else None
        daily = daily if isinstance(daily, dict) else None
        if daily:
            details["dailyApiRequests"] = {
                "available": True,
                "max": daily.get("Max"),
                "remaining": daily.get("Remaining"),
            }
        else:
            reason = "the user lacks 'View Setup and Configuration'" if limits.status_code == 403 else "not readable"
            details["dailyApiRequests"] = {"available": False, "reason": f"{reason} ({limits.status_code})"}
    if usage:
        details["apiUsage"] = usage

    who = user.get("preferred_username") or user.get("email") or user.get("user_id")
    flow_text = "the refresh-token flow" if flow == "refresh_token" else "the client-credentials flow"
    org = user.get("organization_id")
    message = f"Connected to Salesforce org {org} ({access['instance_url']}) as {who}, with {flow_text}."
    daily = details.get("dailyApiRequests") or {}
    if daily.get("available") and isinstance(daily.get("remaining"), int) and isinstance(daily.get("max"), int):
        message += f" {daily['remaining']:,} of {daily['max']:,} daily API requests left."
    elif usage:
        message += f" {usage['used']:,} of {usage['limit']:,} daily API requests used."
    if access.get("scope"):
        message += f" The token allows: {access['scope']}."
    if access.get("rotated") and not from_cache:
        details["refreshTokenRotated"] = True
        message += " Salesforce issued a new refresh token (rotation); a saved integration now keeps the new one."
    return TestResult(True, message, details)


# ----- connecting by consent (the web server flow with PKCE) ------------------------------------------

# Where production orgs sign in and consent. Tests point this at a local fake.
OAUTH_LOGIN_BASE = "https://login.salesforce.com"
AUTHORIZE_PATH = "/services/oauth2/authorize"
MY_DOMAIN_PATTERN = FIELDS[0].pattern or ""


def _authorize_url(app: AppSettings) -> str:
    return OAUTH_LOGIN_BASE.rstrip("/") + AUTHORIZE_PATH


def _code_token_url(app: AppSettings, params: CallbackParams) -> str:
    return OAUTH_LOGIN_BASE.rstrip("/") + TOKEN_PATH


def _configuration(app: AppSettings, granted: oauth.GrantedToken, params: CallbackParams) -> dict:
    """The integration's configuration: the token answer's instance_url (it must be the org's My Domain,
    a Salesforce host) and its refresh token, with the console app's consumer key and secret."""
    instance_url = str(granted.issued.extra.get("instance_url") or "").rstrip("/")
    if not re.fullmatch(MY_DOMAIN_PATTERN, instance_url) or not re.fullmatch(INSTANCE_URL_PATTERN, instance_url):
        shown = urlsplit(instance_url).hostname or "none"
        raise ConnectRefused(
            f"Salesforce's token answer named an instance that is not a Salesforce My Domain ({shown}), so it "
            "was not used. Nothing was saved."
        )
    if not granted.refresh_token:
        raise ConnectRefused(
            "Salesforce issued no refresh token: add the refresh_token scope to the app (Perform requests at any "
            "time) and connect again."
        )
    return {
        "instanceUrl": instance_url,
        "clientId": app.client_id,
        "clientSecret": app.client_secret,
        "refreshToken": granted.refresh_token,
    }


OAUTH = OAuthSpec(
    default_scopes=("api", "refresh_token"),
    authorize_url=_authorize_url,
    token_url=_code_token_url,
    configuration=_configuration,
    token_fields=("instanceUrl", "clientId", "clientSecret", "refreshToken"),
    pkce=True,
    scope_words={
        "api": "read and change the CRM's records (leads, contacts, opportunities) through the API",
        "refresh_token": "keep this access until you revoke it",
        "offline_access": "keep this access until you revoke it",
        "id": "see your user name and organisation",
    },
    console_hint="Setup > App Manager > New Connected App (or External Client App): enable OAuth, paste the "
    "callback URL, require PKCE, and select the scopes.",
)


def _contacts(config: dict, context: TestContext, budget_left=None, crm_object: str = "contacts"):
    """The side of a contact sync (providers.salesforce_contacts, imported when a sync runs)."""
    from providers.salesforce_contacts import SalesforceContacts

    return SalesforceContacts(config, context, budget_left, crm_object)


PROVIDER = Provider(
    key="SALESFORCE",
    name="Salesforce",
    description="Leads, contacts and opportunities over Salesforce's REST API (OAuth 2).",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    refresh=refresh,
    oauth=OAUTH,
    contacts=_contacts,
    sync_objects=("contacts", "leads"),
    docs_url="https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flows.htm",
)
