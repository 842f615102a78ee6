"""Pipedrive: a user's API token for one company, proved by reading that user (`/users/me`).

The token travels in the `x-api-token` header only: the older `?api_token=` form puts it in every
proxy and server log along the way.
"""

from __future__ import annotations

import requests

from core.catalog import Provider, TestContext
from core.fields import FieldSpec
from core.http import describe_exception, read_json, retry_after_seconds
from core.results import TestResult, without_secrets

# The company's API host. Tests point this at a local fake; it is not something a person configures.
API_BASE = "https://{domain}.pipedrive.com"
ME_PATH = "/api/v1/users/me"
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
        help="The part before .pipedrive.com in the address you open Pipedrive at.",
    ),
    FieldSpec(
        "apiToken",
        "API Token",
        "password",
        required=True,
        min_length=20,
        sensitive=True,
        help=(
            "In Pipedrive: your profile menu > Personal preferences > API. Each user has one token per company; "
            "an admin's token can see the whole company."
        ),
    ),
)


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
    return without_secrets(_test(config, context), [config.get("apiToken")])


def _test(config: dict, context: TestContext) -> TestResult:
    domain = config["companyDomain"].strip().lower()
    headers = {"x-api-token": config["apiToken"], "Accept": "application/json"}
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


PROVIDER = Provider(
    key="PIPEDRIVE",
    name="Pipedrive",
    description="Deals, persons and organisations in a Pipedrive company account.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    docs_url="https://developers.pipedrive.com/docs/api/v1/Users#getCurrentUser",
)
