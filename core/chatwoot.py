"""Chatwoot Application API client. Errors become plain sentences; the token never appears in them."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from core.http import describe_exception, read_json, redact, wait_phrase

SERVICE = "Chatwoot"


class ChatwootError(Exception):
    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class AccountAccess:
    account_id: int
    account_name: str
    role: str

    @property
    def is_administrator(self) -> bool:
        return self.role == "administrator"


@dataclass(frozen=True)
class Profile:
    user_id: int
    name: str
    email: str
    accounts: tuple[AccountAccess, ...]

    def access_to(self, account_id: int) -> AccountAccess | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


def _error_text(body: object) -> str:
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                return body[key].strip()[:300]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors[:5])[:300]
    return ""


def explain_status(response: requests.Response) -> str:
    """Chatwoot's real error bodies ({"error": ...} or {"message": ...}) as sentences."""
    status = response.status_code
    said = _error_text(read_json(response))
    if status == 401:
        if "access this account" in said.lower():  # "You are not authorized to access this account"
            return (
                "Chatwoot accepted the token but its user is not a member of this account. Check the "
                "account ID, or use a token of a user in that account."
            )
        if "not authorized" in said.lower():
            return (
                "Chatwoot accepted the token but refused this action: the token's user is not an "
                "administrator of this account. Use an administrator's access token."
            )
        return (
            "Chatwoot rejected the API access token (401 Invalid Access Token). Copy the token again "
            "from Chatwoot: Profile settings > Access token."
        )
    if status == 402:
        return "Chatwoot has no agent seats left on this account. Buy more seats in Chatwoot or remove an agent."
    if status == 403:
        return "Chatwoot refused this action for this token (403). Use an administrator's access token."
    if status == 404:
        return (
            "Chatwoot answered 404 Not Found. Check the base URL points at the Chatwoot server itself "
            "(for example https://app.chatwoot.com) and the account ID is right."
        )
    if status == 422:
        return f"Chatwoot refused the request: {said or 'the data was not accepted'}."
    if status == 429:
        return f"Chatwoot is rate limiting requests. {wait_phrase(response)}"
    if status >= 500:
        return f"The Chatwoot server had an internal problem ({status}). Try again in a few minutes."
    return f"Chatwoot answered with an unexpected status {status}{': ' + said if said else ''}."


class ChatwootClient:
    def __init__(self, base_url: str, token: str, session: requests.Session):
        self._base = base_url.rstrip("/")
        self._token = token
        self._session = session

    def _get(self, path: str) -> object:
        url = self._base + path
        try:
            response = self._session.get(url, headers={"api_access_token": self._token, "Accept": "application/json"})
        except requests.RequestException as exc:
            raise ChatwootError(redact(describe_exception(exc, SERVICE), [self._token])) from None
        if response.status_code >= 400:
            raise ChatwootError(redact(explain_status(response), [self._token]), response.status_code)
        body = read_json(response)
        if body is None:
            raise ChatwootError(
                f"The address answered, but not with Chatwoot's API (the reply to {path} was not JSON). "
                "Check the base URL is the Chatwoot server, not a website or login page."
            )
        return body

    def profile(self) -> Profile:
        body = self._get("/api/v1/profile")
        if not isinstance(body, dict) or "id" not in body:
            raise ChatwootError("Chatwoot's profile answer was not in the expected shape. Is this a Chatwoot server?")
        accounts = []
        for item in body.get("accounts") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), int):
                accounts.append(AccountAccess(item["id"], str(item.get("name") or ""), str(item.get("role") or "")))
        return Profile(
            user_id=int(body["id"]),
            name=str(body.get("name") or body.get("available_name") or ""),
            email=str(body.get("email") or ""),
            accounts=tuple(accounts),
        )
