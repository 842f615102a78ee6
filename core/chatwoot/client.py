"""Chatwoot client: the Application API (a user's access token) and the Platform API (a Platform App token).

Every call goes through the requests session it is given (made by core.http.make_session): timeouts,
bounded retries of GET only (a POST or DELETE is never repeated behind the caller's back), and bodies
bounded in size. Errors become ChatwootError with a plain sentence, a machine-readable ``reason`` and
Chatwoot's own words in ``said``; no token (or password) ever appears in them.

What Chatwoot really answers (shared/chatwoot/SOURCE.md) differs from its OpenAPI description: errors
are ``{"error": ...}`` or ``{"message": ..., "attributes": [...]}``; a non-administrator doing an
administrator's action gets 401, not 403; inboxes come as ``{"payload": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from core.errors import ConsoleError
from core.http import describe_exception, read_json, wait_phrase
from core.redaction import redact

SERVICE = "Chatwoot"
WEB_WIDGET = "Channel::WebWidget"
ROLES: tuple[Role, ...] = ("agent", "administrator")

Role = Literal["agent", "administrator"]

# ChatwootError.reason values.
INVALID_TOKEN = "invalid_token"  # 401 Invalid Access Token (Application or Platform token)
NOT_IN_ACCOUNT = "not_in_account"  # 401: the token's user is not a member of the account
NOT_ADMIN = "not_admin"  # 401/403: the token's user may not do this (not an administrator)
NOT_PERMITTED = "not_permitted"  # 401 Non permissible resource: Platform App not permitted on the account
NO_SEATS = "no_seats"  # 402: no agent seats left in Chatwoot
NOT_FOUND = "not_found"  # 404
EMAIL_TAKEN = "email_taken"  # 422 "Email has already been taken"
INVALID = "invalid"  # any other 422
RATE_LIMITED = "rate_limited"  # 429
SERVER = "server"  # 5xx
UNREACHABLE = "unreachable"  # no answer: DNS, refused, TLS, timeout, too large
BAD_RESPONSE = "bad_response"  # an answer, but not Chatwoot's API (HTML, wrong shape)
UNEXPECTED = "unexpected"  # any other status

# Where a Chatwoot administrator permits a Platform App on an account.
PLATFORM_PERMISSION_HINT = (
    "A Chatwoot super administrator must permit the Platform App on this account: in the Super Admin "
    "console (/super_admin) open Platform Apps, or open the account under Accounts, and add the account to "
    "the app's permitted accounts (in the Rails console: PlatformAppPermissible.create!(platform_app: app, "
    "permissible: Account.find(<account id>))). Until then, agents cannot be created with a password "
    "through the Platform App."
)


class ChatwootError(ConsoleError):
    """A Chatwoot call failed. ``str(error)`` is a sentence a person can act on, with no secret in it.

    ``status`` is the HTTP status (None when there was no answer), ``reason`` one of the reason constants
    of this module (INVALID_TOKEN, NO_SEATS, EMAIL_TAKEN, ...), and ``said`` Chatwoot's own error text.
    """

    def __init__(self, message: str, status: int | None = None, reason: str = UNEXPECTED, said: str = ""):
        self.status = status
        self.reason = reason
        self.said = said
        super().__init__(message)


# ----- what the API returns -------------------------------------------------------------------------


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
    """The token's own user (GET /api/v1/profile) and its role in each account."""

    user_id: int
    name: str
    email: str
    accounts: tuple[AccountAccess, ...]

    def access_to(self, account_id: int) -> AccountAccess | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


@dataclass(frozen=True)
class Agent:
    """A user of the account (Chatwoot calls every account user an agent, administrators included).

    ``availability_status`` is Chatwoot's computed presence (available | busy | offline); ``confirmed`` is
    False until the agent has confirmed the e-mail (set a password through Chatwoot's link).
    """

    id: int
    name: str
    email: str
    role: str
    availability_status: str
    confirmed: bool
    available_name: str = ""

    @property
    def is_administrator(self) -> bool:
        return self.role == "administrator"


@dataclass(frozen=True)
class Inbox:
    """An inbox of the account. A website inbox (``is_website``) carries the widget's ``website_token``."""

    id: int
    name: str
    channel_type: str
    website_token: str | None = None
    website_url: str | None = None

    @property
    def is_website(self) -> bool:
        return self.channel_type == WEB_WIDGET


@dataclass(frozen=True)
class PlatformUser:
    """A user made (or found) by the Platform API. Its access token is deliberately not kept.

    ``account_ids`` are the accounts the user already belonged to: Chatwoot answers a create for an
    existing e-mail with that user, unchanged (its password is NOT replaced), so a non-empty tuple means
    the user existed before.
    """

    id: int
    name: str
    email: str
    confirmed: bool
    account_ids: tuple[int, ...]


@dataclass(frozen=True)
class AccountUserLink:
    account_id: int
    user_id: int
    role: str


# ----- errors as sentences --------------------------------------------------------------------------


def _error_text(body: object) -> str:
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                return body[key].strip()[:300]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors[:5])[:300]
    return ""


def _reason(status: int, said: str) -> str:
    text = said.lower()
    if status == 401:
        if "non permissible" in text:
            return NOT_PERMITTED
        if "access this account" in text:
            return NOT_IN_ACCOUNT
        if "not authorized" in text:
            return NOT_ADMIN
        return INVALID_TOKEN
    if status == 422:
        return EMAIL_TAKEN if "email" in text and "already been taken" in text else INVALID
    if status >= 500:
        return SERVER
    return {402: NO_SEATS, 403: NOT_ADMIN, 404: NOT_FOUND, 429: RATE_LIMITED}.get(status, UNEXPECTED)


def explain_status(response: requests.Response, *, platform: bool = False) -> str:
    """Chatwoot's real error bodies ({"error": ...} or {"message": ...}) as sentences.

    ``platform=True`` when the request used a Platform App token (a 401 then names that token).
    """
    status = response.status_code
    said = _error_text(read_json(response))
    if status == 401:
        reason = _reason(status, said)
        if reason == NOT_PERMITTED:
            return (
                "Chatwoot refused the Platform App on this account (Non permissible resource). "
                + PLATFORM_PERMISSION_HINT
            )
        if reason == NOT_IN_ACCOUNT:
            return (
                "Chatwoot accepted the token but its user is not a member of this account. Check the "
                "account ID, or use a token of a user in that account."
            )
        if reason == NOT_ADMIN:
            return (
                "Chatwoot accepted the token but refused this action: the token's user is not an "
                "administrator of this account. Use an administrator's access token."
            )
        if platform:
            return (
                "Chatwoot rejected the Platform App token (401 Invalid Access Token). Copy it again from "
                "Chatwoot's Super Admin console > Platform Apps, or remove it from the integration."
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
        if said:  # Chatwoot's own {"error": "Resource could not be found"}: the route exists, the record not
            return (
                "Chatwoot answered 404 Not Found: the agent, inbox or account was not found. It may have "
                "been deleted in Chatwoot meanwhile, or the account ID is wrong; refresh and try again."
            )
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


# ----- parsing ----------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _shape_error(what: str) -> ChatwootError:
    return ChatwootError(
        f"Chatwoot's answer ({what}) was not in the expected shape. Is the base URL a Chatwoot server?",
        reason=BAD_RESPONSE,
    )


def _agent(item: Any) -> Agent:
    if not isinstance(item, dict) or _int(item.get("id")) is None:
        raise _shape_error("an agent")
    return Agent(
        id=_int(item["id"]) or 0,
        name=_text(item.get("name")) or _text(item.get("available_name")),
        email=_text(item.get("email")),
        role=_text(item.get("role")),
        availability_status=_text(item.get("availability_status")) or "offline",
        confirmed=item.get("confirmed") is True,
        available_name=_text(item.get("available_name")),
    )


def _agents(body: Any) -> list[Agent]:
    items = body.get("payload") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise _shape_error("a list of agents")
    return [_agent(item) for item in items]


def _inbox(item: Any) -> Inbox:
    if not isinstance(item, dict) or _int(item.get("id")) is None:
        raise _shape_error("an inbox")
    return Inbox(
        id=_int(item["id"]) or 0,
        name=_text(item.get("name")),
        channel_type=_text(item.get("channel_type")),
        website_token=_text(item.get("website_token")) or None,
        website_url=_text(item.get("website_url")) or None,
    )


parse_inbox = _inbox  # for core.chatwoot.bot_api


# ----- the client -------------------------------------------------------------------------------------


class ChatwootClient:
    """One Chatwoot server, as one user (``token``), optionally one account and a Platform App.

    ``account_id`` is needed by the account-scoped methods (agents, inboxes, inbox members);
    ``platform_token`` by create_platform_user and link_account_user. Methods raise ChatwootError.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        session: requests.Session,
        *,
        account_id: int | None = None,
        platform_token: str | None = None,
    ):
        self._base = base_url.rstrip("/")
        self._token = token
        self._session = session
        self._account_id = account_id
        self._platform_token = platform_token or None

    # ----- plumbing ---------------------------------------------------------------------------

    def _secrets(self, extra: Iterable[str] = ()) -> list[str]:
        return [s for s in (self._token, self._platform_token, *extra) if s]

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        platform: bool = False,
        secrets: Iterable[str] = (),
        empty_ok: bool = False,
    ) -> Any:
        """Send one request; the answer's JSON, or None for an accepted empty answer when ``empty_ok``."""
        hidden = self._secrets(secrets)
        if platform and not self._platform_token:
            raise ChatwootError("This integration has no Platform App token.", reason=INVALID_TOKEN)
        token = self._platform_token if platform else self._token
        headers = {"api_access_token": token or "", "Accept": "application/json"}
        try:
            response = self._session.request(method, self._base + path, headers=headers, json=body)
        except requests.RequestException as exc:
            raise ChatwootError(redact(describe_exception(exc, SERVICE), hidden), reason=UNREACHABLE) from None
        if response.status_code >= 400:
            said = _error_text(read_json(response))
            raise ChatwootError(
                redact(explain_status(response, platform=platform), hidden),
                response.status_code,
                _reason(response.status_code, said),
                redact(said, hidden),
            )
        if empty_ok and not response.content.strip():
            return None
        answer = read_json(response)
        if answer is None:
            raise ChatwootError(
                f"The address answered, but not with Chatwoot's API (the reply to {path} was not JSON). "
                "Check the base URL is the Chatwoot server, not a website or login page.",
                response.status_code,
                BAD_RESPONSE,
            )
        return answer

    def call(self, method: str, path: str, *, body: dict | None = None, empty_ok: bool = False) -> Any:
        """One Application API request on this client's token (core.chatwoot.bot_api uses it)."""
        return self._request(method, path, body=body, empty_ok=empty_ok)

    def account_path(self) -> str:
        """/api/v1/accounts/{account_id}: the prefix of the account-scoped paths."""
        return self._account()

    def _account(self) -> str:
        if self._account_id is None:
            raise ValueError("This ChatwootClient was made without an account_id.")
        return f"/api/v1/accounts/{int(self._account_id)}"

    @staticmethod
    def _ids(user_ids: Iterable[int]) -> list[int]:
        ids = list(dict.fromkeys(int(i) for i in user_ids))
        if not ids:
            raise ValueError("Give at least one user id.")
        return ids

    # ----- Application API --------------------------------------------------------------------

    def profile(self) -> Profile:
        """GET /api/v1/profile: who the token belongs to, and its role in each account."""
        body = self._request("GET", "/api/v1/profile")
        if not isinstance(body, dict) or "id" not in body:
            raise ChatwootError(
                "Chatwoot's profile answer was not in the expected shape. Is this a Chatwoot server?",
                reason=BAD_RESPONSE,
            )
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

    def list_agents(self) -> list[Agent]:
        """GET .../agents: every user of the account, administrators included."""
        return _agents(self._request("GET", self._account() + "/agents"))

    def create_agent(self, name: str, email: str, role: Role) -> Agent:
        """POST .../agents (administrator only). Chatwoot sets no password: it e-mails the new agent a link.

        Raises ChatwootError with reason NO_SEATS (402) or EMAIL_TAKEN (422) among others. Not retried.
        """
        body = {"name": name, "email": email, "role": role}
        return _agent(self._request("POST", self._account() + "/agents", body=body))

    def delete_agent(self, agent_id: int) -> None:
        """DELETE .../agents/{id} (administrator only): removes the user from the account."""
        self._request("DELETE", f"{self._account()}/agents/{int(agent_id)}", empty_ok=True)

    def list_inboxes(self) -> list[Inbox]:
        """GET .../inboxes: an administrator sees every inbox, an agent only the ones it works in."""
        body = self._request("GET", self._account() + "/inboxes")
        items = body.get("payload") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _shape_error("a list of inboxes")
        return [_inbox(item) for item in items]

    def list_inbox_members(self, inbox_id: int) -> list[Agent]:
        """GET .../inbox_members/{inbox_id}: the agents who work in the inbox."""
        return _agents(self._request("GET", f"{self._account()}/inbox_members/{int(inbox_id)}"))

    def add_inbox_members(self, inbox_id: int, user_ids: Iterable[int]) -> list[Agent]:
        """POST .../inbox_members: adds these agents (others stay); returns the inbox's members after."""
        body = {"inbox_id": int(inbox_id), "user_ids": self._ids(user_ids)}
        return _agents(self._request("POST", self._account() + "/inbox_members", body=body))

    def remove_inbox_members(self, inbox_id: int, user_ids: Iterable[int]) -> None:
        """DELETE .../inbox_members: removes these agents from the inbox (others stay)."""
        body = {"inbox_id": int(inbox_id), "user_ids": self._ids(user_ids)}
        self._request("DELETE", self._account() + "/inbox_members", body=body, empty_ok=True)

    # ----- Platform API -----------------------------------------------------------------------

    @property
    def has_platform_token(self) -> bool:
        return self._platform_token is not None

    def create_platform_user(self, name: str, email: str, password: str) -> PlatformUser:
        """POST /platform/api/v1/users with the password (Platform App token).

        If a user with this e-mail exists, Chatwoot returns it unchanged and ignores the password; see
        PlatformUser.account_ids. The password never appears in an error message.
        """
        body = {"name": name, "email": email, "password": password}
        answer = self._request("POST", "/platform/api/v1/users", body=body, platform=True, secrets=[password])
        if not isinstance(answer, dict) or _int(answer.get("id")) is None:
            raise _shape_error("a platform user")
        account_ids = tuple(
            i for i in (_int(a.get("id")) for a in answer.get("accounts") or [] if isinstance(a, dict)) if i is not None
        )
        return PlatformUser(
            id=_int(answer["id"]) or 0,
            name=_text(answer.get("name")),
            email=_text(answer.get("email")),
            confirmed=answer.get("confirmed") is True,
            account_ids=account_ids,
        )

    def link_account_user(self, account_id: int, user_id: int, role: Role) -> AccountUserLink:
        """POST /platform/api/v1/accounts/{id}/account_users: add the user to the account with a role.

        Only works on accounts the Platform App is permitted on; otherwise ChatwootError with reason
        NOT_PERMITTED, whose message says what the Chatwoot administrator must do.
        """
        body = {"user_id": int(user_id), "role": role}
        path = f"/platform/api/v1/accounts/{int(account_id)}/account_users"
        answer = self._request("POST", path, body=body, platform=True)
        if not isinstance(answer, dict):
            raise _shape_error("an account user")
        return AccountUserLink(
            account_id=_int(answer.get("account_id")) or int(account_id),
            user_id=_int(answer.get("user_id")) or int(user_id),
            role=_text(answer.get("role")) or role,
        )
