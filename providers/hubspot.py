"""HubSpot: a private app's access token, proved by reading the account's details."""

from __future__ import annotations

import requests

from core.catalog import Provider, TestContext
from core.fields import FieldSpec
from core.http import describe_exception, read_json, wait_phrase
from core.results import TestResult, without_secrets

# HubSpot's API host. Tests point this at a local fake; it is not something a person configures.
API_BASE = "https://api.hubapi.com"
DETAILS_PATH = "/account-info/v3/details"
USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"

FIELDS = (
    FieldSpec(
        "accessToken",
        "Private App Access Token",
        "password",
        required=True,
        min_length=20,
        sensitive=True,
        placeholder="pat-na1-…",
        help=(
            "In HubSpot: Settings > Integrations > Private apps (Legacy apps) > your app > Auth > Access token. "
            "It starts with pat-."
        ),
    ),
)


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


def test_connection(config: dict, context: TestContext) -> TestResult:
    """GET /account-info/v3/details with the token, then today's API usage when the token may read it."""
    return without_secrets(_test(config, context), [config.get("accessToken")])


def _test(config: dict, context: TestContext) -> TestResult:
    session = context.http
    headers = {"Authorization": f"Bearer {config['accessToken']}", "Accept": "application/json"}
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


PROVIDER = Provider(
    key="HUBSPOT",
    name="HubSpot",
    description="Contacts, companies and deals through a HubSpot private app.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    docs_url="https://developers.hubspot.com/docs/api/private-apps",
)
