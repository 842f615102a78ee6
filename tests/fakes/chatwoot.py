"""A stateful fake Chatwoot server for contract tests.

It listens on 127.0.0.1 (a free port) in a background thread and answers like a real Chatwoot server:
users with access tokens and a role per account, accounts with agent seat limits, inboxes (website
inboxes carry a ``website_token``), inbox members, and Platform Apps permitted on some accounts.
Error bodies are the ones Chatwoot's controllers really send (see tests/fakes/chatwoot_api/SOURCE.md), not the
shapes the OpenAPI description declares.

Every request it receives and every response it sends is checked with openapi-core against Chatwoot's
own OpenAPI description (the Application API, or the Platform API for ``/platform`` paths). Anything
that does not match is appended to ``contract_violations``; the ``fake_chatwoot`` fixture fails the
test when that list is not empty.

Test hooks:
- ``force(path, status, ...)``: the next N answers on a path are the given status, body and headers
  (429 with Retry-After, 500, an HTML page); the request is still validated, the forced answer is not.
- ``set_delay(seconds, path=None)``: wait before answering (for read timeouts).
- ``requests``: every request received (method, path, query, headers with their names as sent, body).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from tests.fakes.chatwoot_bots import BOT_ROUTES, BotsMixin
from tests.fakes.chatwoot_contacts import CONTACT_ROUTES, ContactsMixin, patch_spec
from tests.fakes.chatwoot_replies import _empty_ok, _error, _invalid, _json, _Refusal, _Reply

# Chatwoot's own API description, kept in the repository (chatwoot_api/SOURCE.md says where from).
SPEC_DIR = Path(__file__).resolve().parent / "chatwoot_api"

WEB_WIDGET = "Channel::WebWidget"
ROLES = ("agent", "administrator")
MAX_BODY_BYTES = 1024 * 1024
ACTIVE_AT = "2025-01-01T09:00:00.000Z"

# Chatwoot's real error bodies (SOURCE.md, "Known differences").
INVALID_TOKEN = "Invalid Access Token"
NOT_IN_ACCOUNT = "You are not authorized to access this account"
NOT_ALLOWED = "You are not authorized to do this action"
NOT_FOUND = "Resource could not be found"
SEATS_EXCEEDED = "Account limit exceeded. Please purchase more licenses"
NOT_PERMISSIBLE = "Non permissible resource"

RAILS_404_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>The page you were looking for doesn't exist (404)</title></head>"
    "<body><h1>The page you were looking for doesn't exist.</h1></body></html>\n"
)


# ----- the OpenAPI descriptions ------------------------------------------------------------------


def _application_spec() -> dict:
    data = json.loads((SPEC_DIR / "application_swagger.json").read_text(encoding="utf-8"))
    paths = data["paths"]
    # Known difference: GET/PATCH /api/v1/accounts/{id} declare their path parameter as account_id,
    # which makes the description itself invalid; the path is renamed to what it declares.
    if "/api/v1/accounts/{id}" in paths and "/api/v1/accounts/{account_id}" not in paths:
        paths["/api/v1/accounts/{account_id}"] = paths.pop("/api/v1/accounts/{id}")
    # Known difference: PATCH/DELETE inbox_members declare inbox_id as a string; the server takes an integer.
    members = paths["/api/v1/accounts/{account_id}/inbox_members"]
    for method in ("patch", "delete"):
        props = members[method]["requestBody"]["content"]["application/json"]["schema"]["properties"]
        props["inbox_id"] = {"anyOf": [{"type": "integer"}, {"type": "string"}], "description": "The ID of the inbox"}
    patch_spec(paths)  # contacts: the answers' real shapes (tests/fakes/chatwoot_contacts.py)
    return data


def _platform_spec() -> dict:
    return json.loads((SPEC_DIR / "platform_swagger.json").read_text(encoding="utf-8"))


_SPEC_LOADERS: dict[str, Callable[[], dict]] = {"application": _application_spec, "platform": _platform_spec}
_SPECS: dict[str, OpenAPI] = {}
_SPECS_LOCK = threading.Lock()


def openapi(kind: str) -> OpenAPI:
    """The checked description, built once per process (building validates the whole document)."""
    with _SPECS_LOCK:
        if kind not in _SPECS:
            data = _SPEC_LOADERS[kind]()
            # The description names https://app.chatwoot.com; the fake is served on 127.0.0.1.
            data["servers"] = [{"url": "/"}]
            _SPECS[kind] = OpenAPI.from_dict(data)
        return _SPECS[kind]


def _spec_for(path: str) -> str:
    return "platform" if path.startswith("/platform/") else "application"


def _describe_error(exc: BaseException) -> str:
    parts, seen = [], 0
    node: BaseException | None = exc
    while node is not None and seen < 5:
        parts.append(f"{type(node).__name__}: {node}")
        parts += [f"  - {getattr(e, 'message', e)}" for e in list(getattr(node, "schema_errors", ()))[:5]]
        node, seen = node.__cause__, seen + 1
    return "\n".join(parts)


# ----- state ---------------------------------------------------------------------------------------


@dataclass
class Account:
    id: int
    name: str
    seat_limit: int | None = None  # agent seats; None means unlimited


@dataclass
class User:
    id: int
    name: str
    email: str
    access_token: str
    password: str | None = None
    display_name: str | None = None
    confirmed: bool = True
    custom_attributes: dict = field(default_factory=dict)


@dataclass
class AccountUser:
    account_id: int
    user_id: int
    role: str
    auto_offline: bool = True
    availability: str = "online"


@dataclass
class Inbox:
    id: int
    account_id: int
    name: str
    channel_type: str
    website_url: str | None = None
    website_token: str | None = None
    members: list[int] = field(default_factory=list)  # user ids
    widget_color: str = "#1f93ff"
    welcome_title: str = ""
    welcome_tagline: str = ""
    agent_bot_id: int | None = None  # the agent bot answering its conversations (set_agent_bot)


@dataclass
class PlatformApp:
    name: str
    token: str
    account_ids: set[int]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: Headers  # names exactly as the client sent them (api_access_token keeps its underscores)
    body: bytes

    @property
    def header_names(self) -> list[str]:
        return [name for name, _ in self.headers.items()]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Forced:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]
    method: str | None
    remaining: int


class _Replies:
    """The reply builders, for the mixins (tests/fakes/chatwoot_contacts.py)."""

    @staticmethod
    def _reply_json(status: int, payload: Any) -> _Reply:
        return _json(status, payload)

    @staticmethod
    def _reply_error(status: int, message: str) -> _Reply:
        return _error(status, message)

    @staticmethod
    def _reply_invalid(message: str, *attributes: str) -> _Reply:
        return _invalid(message, *attributes)


ACCOUNT = r"/api/v1/accounts/(?P<account_id>\d+)"
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/api/v1/profile", "profile"),
    ("GET", ACCOUNT + r"/agents", "list_agents"),
    ("POST", ACCOUNT + r"/agents", "create_agent"),
    ("DELETE", ACCOUNT + r"/agents/(?P<agent_id>\d+)", "delete_agent"),
    ("GET", ACCOUNT + r"/inboxes", "list_inboxes"),
    ("GET", ACCOUNT + r"/inbox_members/(?P<inbox_id>\d+)", "inbox_members"),
    ("POST", ACCOUNT + r"/inbox_members", "add_inbox_members"),
    ("PATCH", ACCOUNT + r"/inbox_members", "update_inbox_members"),
    ("DELETE", ACCOUNT + r"/inbox_members", "remove_inbox_members"),
    *BOT_ROUTES,
    *CONTACT_ROUTES,
    ("POST", r"/platform/api/v1/users", "platform_create_user"),
    ("POST", r"/platform/api/v1/accounts/(?P<account_id>\d+)/account_users", "platform_add_account_user"),
)
_COMPILED = tuple((method, re.compile(pattern + r"/?"), name) for method, pattern, name in ROUTES)

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PASSWORD_SPECIAL = re.compile(r"[^A-Za-z0-9]")


class FakeChatwoot(BotsMixin, ContactsMixin, _Replies):
    """Start with ``start()`` (or ``with FakeChatwoot() as fake``); ``url`` is its base address.

    ``validate_every``: check 1 request and answer in N against the description (1: every one; a test of
    thousands of contacts samples, so the check stays within its time)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids: dict[str, int] = {}
        self.accounts: dict[int, Account] = {}
        self.users: dict[int, User] = {}
        self.account_users: dict[tuple[int, int], AccountUser] = {}
        self.inboxes: dict[int, Inbox] = {}
        self.platform_apps: dict[str, PlatformApp] = {}
        self.requests: list[ReceivedRequest] = []
        self.contract_violations: list[str] = []
        # A request to a path no route answers is a violation unless a test expects it (a wrong base URL).
        self.allow_unrouted = False
        self._forced: dict[str, list[_Forced]] = {}
        self._delays: dict[str | None, float] = {}
        self.seed: Any = None  # what a fixture seeded, for the tests to read (ids, tokens)
        self.init_bots()
        self.validate_every = 1
        self._seen = 0
        self._contacts_init()

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeChatwoot:
        openapi("application")  # fail here, not inside a request, if the description cannot be read
        openapi("platform")
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client that hung up is not news
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # delayed answers stop waiting
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeChatwoot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the fake first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----- seeding state ---------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        with self._lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    def add_account(self, name: str, seat_limit: int | None = None) -> Account:
        with self._lock:
            account = Account(self._next_id("account"), name, seat_limit)
            self.accounts[account.id] = account
            return account

    def add_user(self, name: str, email: str, token: str | None = None, password: str | None = None) -> User:
        with self._lock:
            user = User(self._next_id("user"), name, email.lower(), token or secrets.token_urlsafe(18), password)
            self.users[user.id] = user
            return user

    def add_account_user(self, account_id: int, user_id: int, role: str) -> AccountUser:
        assert role in ROLES, role
        with self._lock:
            link = AccountUser(account_id, user_id, role)
            self.account_users[(account_id, user_id)] = link
            return link

    def add_inbox(
        self, account_id: int, name: str, channel_type: str = WEB_WIDGET, website_url: str | None = None
    ) -> Inbox:
        with self._lock:
            token = secrets.token_urlsafe(18) if channel_type == WEB_WIDGET else None
            inbox = Inbox(self._next_id("inbox"), account_id, name, channel_type, website_url, token)
            self.inboxes[inbox.id] = inbox
            return inbox

    def add_inbox_member(self, inbox_id: int, user_id: int) -> None:
        with self._lock:
            if user_id not in self.inboxes[inbox_id].members:
                self.inboxes[inbox_id].members.append(user_id)

    def add_platform_app(self, name: str, account_ids: set[int], token: str | None = None) -> PlatformApp:
        with self._lock:
            app = PlatformApp(name, token or secrets.token_urlsafe(18), set(account_ids))
            self.platform_apps[app.token] = app
            return app

    # ----- test hooks --------------------------------------------------------------------------

    def force(
        self,
        path: str,
        status: int,
        body: str | bytes | dict | list | None = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        method: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next `times` requests on `path` (optionally only this method) with this reply."""
        if isinstance(body, dict | list):
            raw, ctype = json.dumps(body).encode(), content_type or "application/json; charset=utf-8"
        elif isinstance(body, str):
            raw, ctype = body.encode(), content_type or "text/html; charset=utf-8"
        else:
            raw, ctype = body or b"", content_type or "text/plain"
        with self._lock:
            self._forced.setdefault(path, []).append(
                _Forced(status, raw, ctype, dict(headers or {}), method.upper() if method else None, times)
            )

    def set_delay(self, seconds: float, path: str | None = None) -> None:
        """Wait this long before answering (every path, or only `path`)."""
        with self._lock:
            self._delays[path] = seconds

    def requests_to(self, path: str, method: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # ----- one request ----------------------------------------------------------------------------

    def _take_forced(self, method: str, path: str) -> _Reply | None:
        with self._lock:
            queue = self._forced.get(path) or []
            for item in queue:
                if item.method in (None, method) and item.remaining > 0:
                    item.remaining -= 1
                    if item.remaining == 0:
                        queue.remove(item)
                    return _Reply(item.status, item.body, item.content_type, item.headers, forced=True)
        return None

    def _delay_for(self, path: str) -> float:
        with self._lock:
            return self._delays.get(path, self._delays.get(None, 0.0))

    def handle(self, received: ReceivedRequest, host: str) -> _Reply:
        with self._lock:
            self.requests.append(received)
            self._seen += 1
            checked = self._seen % max(1, self.validate_every) == 1 or self.validate_every <= 1
        request = self._openapi_request(received, host) if checked else None
        if request is not None:
            self._check_request(received, request)
        if delay := self._delay_for(received.path):
            self._stopping.wait(delay)
        reply = self._take_forced(received.method, received.path)
        if reply is None:
            try:
                reply = self._route(received)
            except Exception:  # a bug in the fake must fail the test, not hang it
                self._violation(f"the fake crashed on {received.method} {received.path}:\n{traceback.format_exc()}")
                reply = _error(500, "fake crashed")
        if not reply.forced and request is not None:
            self._check_response(received, request, reply)
        return reply

    def _violation(self, text: str) -> None:
        with self._lock:
            self.contract_violations.append(text)

    def _openapi_request(self, received: ReceivedRequest, host: str) -> WerkzeugOpenAPIRequest:
        builder = EnvironBuilder(
            method=received.method,
            path=received.path,
            query_string=received.query,
            base_url=f"http://{host}/",
            data=received.body,
            content_type=received.headers.get("Content-Type"),
        )
        request = WerkzeugOpenAPIRequest(Request(builder.get_environ()))
        # WSGI drops the underscores of `api_access_token`; validate the header names as they were sent.
        request.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(received.query, keep_blank_values=True)),
            header=Headers(received.headers),
            cookie=request.request.cookies,
        )
        return request

    def _check_request(self, received: ReceivedRequest, request: WerkzeugOpenAPIRequest) -> None:
        errors = list(openapi(_spec_for(received.path)).iter_request_errors(request))
        if self._route_for(received) is None:
            if not self.allow_unrouted:  # the fake answers 404; a test of a wrong base URL expects that
                known = not any(isinstance(e, PathError) for e in errors)
                why = (
                    "a Chatwoot route the fake does not implement" if known else "not a route in Chatwoot's description"
                )
                self._violation(f"request {received.method} {received.path}: {why} (answered 404)")
            return
        for exc in errors:
            self._violation(
                f"request {received.method} {received.path} breaks the description:\n{_describe_error(exc)}"
            )

    def _check_response(self, received: ReceivedRequest, request: WerkzeugOpenAPIRequest, reply: _Reply) -> None:
        what = f"{received.method} {received.path} -> {reply.status}"
        if not reply.routed:
            return  # the Rails 404 page; the request was reported by _check_request
        if reply.status >= 400:
            # Chatwoot's error bodies differ from the description's {description, errors[]} and some
            # statuses are undeclared (SOURCE.md, "Known differences"), so errors are checked loosely:
            # a JSON object with an "error" sentence, or a validation "message" with its "attributes".
            try:
                body = json.loads(reply.body)
            except ValueError:
                body = None
            shaped = isinstance(body, dict) and (
                isinstance(body.get("error"), str)
                or (isinstance(body.get("message"), str) and isinstance(body.get("attributes"), list))
            )
            if not shaped:
                self._violation(f"response {what}: not one of Chatwoot's error bodies: {reply.body[:200]!r}")
            return
        response = Response(reply.body, status=reply.status, headers=reply.headers)
        if reply.content_type:
            response.headers["Content-Type"] = reply.content_type
        errors = list(
            openapi(_spec_for(received.path)).iter_response_errors(request, WerkzeugOpenAPIResponse(response))
        )
        for exc in errors:
            self._violation(f"response {what} breaks the description:\n{_describe_error(exc)}")

    # ----- routing -------------------------------------------------------------------------------

    def _route_for(self, received: ReceivedRequest) -> tuple[str, dict[str, str]] | None:
        for method, pattern, name in _COMPILED:
            if method == received.method and (match := pattern.fullmatch(received.path)):
                return name, match.groupdict()
        return None

    def _route(self, received: ReceivedRequest) -> _Reply:
        found = self._route_for(received)
        if found is None:
            # Rails answers an unknown route with its static 404 page.
            return _Reply(404, RAILS_404_PAGE.encode(), "text/html; charset=utf-8", routed=False)
        name, params = found
        body = None
        if received.body:
            try:
                body = json.loads(received.body)
            except ValueError:
                return _error(422, "The request body is not valid JSON")
        try:
            with self._lock:
                return getattr(self, "_do_" + name)(received, body if isinstance(body, dict) else {}, **params)
        except _Refusal as refusal:
            return refusal.reply

    # ----- authentication and authorisation --------------------------------------------------

    @staticmethod
    def _token(received: ReceivedRequest) -> str | None:
        # Rack folds `api_access_token` and `Api-Access-Token` into the same HTTP_API_ACCESS_TOKEN.
        for name, value in received.headers.items():
            if name.lower().replace("-", "_") == "api_access_token":
                return value
        return None

    def _current_user(self, received: ReceivedRequest) -> User:
        token = self._token(received)
        user = next((u for u in self.users.values() if token and secrets.compare_digest(u.access_token, token)), None)
        if user is None:
            raise _Refusal(_error(401, INVALID_TOKEN))
        return user

    def _account_member(
        self, received: ReceivedRequest, account_id: str, admin: bool = False
    ) -> tuple[User, Account, AccountUser]:
        user = self._current_user(received)
        account = self.accounts.get(int(account_id))
        if account is None:
            raise _Refusal(_error(404, NOT_FOUND))
        link = self.account_users.get((account.id, user.id))
        if link is None:
            raise _Refusal(_error(401, NOT_IN_ACCOUNT))
        if admin and link.role != "administrator":
            raise _Refusal(_error(401, NOT_ALLOWED))
        return user, account, link

    def _platform_app(self, received: ReceivedRequest) -> PlatformApp:
        token = self._token(received)
        app = self.platform_apps.get(token or "")
        if app is None:
            raise _Refusal(_error(401, INVALID_TOKEN))
        return app

    # ----- representations -------------------------------------------------------------------

    def _agent_json(self, link: AccountUser) -> dict:
        user = self.users[link.user_id]
        return {
            "id": user.id,
            "account_id": link.account_id,
            "availability_status": "offline",  # presence: nobody is signed in to the fake's dashboard
            "auto_offline": link.auto_offline,
            "confirmed": user.confirmed,
            "email": user.email,
            "provider": "email",
            "available_name": user.display_name or user.name,
            "name": user.name,
            "role": link.role,
            "thumbnail": "",
        }

    def _user_json(self, user: User) -> dict:
        links = [link for (_, uid), link in self.account_users.items() if uid == user.id]
        body: dict[str, Any] = {
            "id": user.id,
            "access_token": user.access_token,
            "available_name": user.display_name or user.name,
            "avatar_url": "",
            "confirmed": user.confirmed,
            "display_name": user.display_name,
            "message_signature": None,
            "email": user.email,
            "hmac_identifier": secrets.token_hex(8),
            "name": user.name,
            "provider": "email",
            "pubsub_token": f"pubsub-{user.id}",
            "ui_settings": {},
            "uid": user.email,
            "type": None,
            "custom_attributes": user.custom_attributes,
            "accounts": [
                {
                    "id": link.account_id,
                    "name": self.accounts[link.account_id].name,
                    "status": "active",
                    "active_at": ACTIVE_AT,
                    "role": link.role,
                    "permissions": ["administrator"] if link.role == "administrator" else ["agent"],
                    "availability": link.availability,
                    "availability_status": link.availability,
                    "auto_offline": link.auto_offline,
                    "custom_role_id": None,
                    "custom_role": None,
                }
                for link in links
            ],
        }
        if links:
            # Chatwoot sends null for these when the user has no account; the description does not allow
            # null, so they are left out instead.
            body["account_id"] = links[0].account_id
            body["role"] = links[0].role
        return body

    def _inbox_json(self, inbox: Inbox) -> dict:
        body: dict[str, Any] = {
            "id": inbox.id,
            "avatar_url": "",
            "channel_id": inbox.id,
            "name": inbox.name,
            "channel_type": inbox.channel_type,
            "greeting_enabled": False,
            "greeting_message": "",
            "working_hours_enabled": False,
            "enable_email_collect": True,
            "csat_survey_enabled": False,
            "enable_auto_assignment": True,
            "auto_assignment_config": {},
            "timezone": "UTC",
            "allow_messages_after_resolved": True,
            "lock_to_single_conversation": False,
            "sender_name_type": "friendly",
        }
        if inbox.channel_type == WEB_WIDGET:
            body.update(
                website_url=inbox.website_url or "",
                website_token=inbox.website_token,
                widget_color=inbox.widget_color,
                welcome_title=inbox.welcome_title,
                welcome_tagline=inbox.welcome_tagline,
                web_widget_script=_widget_script(self.url, inbox.website_token or ""),
            )
        return body

    def _members_payload(self, inbox: Inbox) -> dict:
        links = [self.account_users.get((inbox.account_id, uid)) for uid in inbox.members]
        return {"payload": [self._agent_json(link) for link in links if link is not None]}

    def _inbox_in(self, account: Account, inbox_id: Any) -> Inbox:
        try:
            inbox = self.inboxes.get(int(inbox_id))
        except (TypeError, ValueError):
            inbox = None
        if inbox is None or inbox.account_id != account.id:
            raise _Refusal(_error(404, NOT_FOUND))
        return inbox

    @staticmethod
    def _required(body: dict, *names: str) -> None:
        for name in names:
            if body.get(name) in (None, "", []):
                raise _Refusal(_error(422, f"param is missing or the value is empty: {name}"))

    def _user_ids(self, account: Account, body: dict) -> list[int]:
        ids = body.get("user_ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _Refusal(_error(422, "param is missing or the value is empty: user_ids"))
        if any((account.id, uid) not in self.account_users for uid in ids):
            raise _Refusal(_invalid("User must exist", "user"))
        return list(dict.fromkeys(ids))

    # ----- Application API -------------------------------------------------------------------

    def _do_profile(self, received: ReceivedRequest, body: dict) -> _Reply:
        return _json(200, self._user_json(self._current_user(received)))

    def _do_list_agents(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id)
        links = [link for (aid, _), link in self.account_users.items() if aid == account.id]
        return _json(200, [self._agent_json(link) for link in links])

    def _do_create_agent(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)
        seats_used = sum(1 for (aid, _) in self.account_users if aid == account.id)
        if account.seat_limit is not None and seats_used >= account.seat_limit:
            return _error(402, SEATS_EXCEEDED)
        self._required(body, "name", "email", "role")
        email = str(body["email"]).strip().lower()
        if not EMAIL.fullmatch(email):
            return _invalid("Email is invalid", "email")
        if body["role"] not in ROLES:
            return _invalid("Role is not included in the list", "role")
        user = next((u for u in self.users.values() if u.email == email), None)
        if user is not None and (account.id, user.id) in self.account_users:
            return _invalid("Email has already been taken", "email")
        if user is None:
            # Chatwoot sets no password; it e-mails the new agent a link to choose one.
            user = self.add_user(str(body["name"]), email)
            user.confirmed = False
        link = self.add_account_user(account.id, user.id, body["role"])
        if isinstance(body.get("auto_offline"), bool):
            link.auto_offline = body["auto_offline"]
        return _json(200, self._agent_json(link))

    def _do_delete_agent(self, received: ReceivedRequest, body: dict, account_id: str, agent_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)
        if self.account_users.pop((account.id, int(agent_id)), None) is None:
            return _error(404, NOT_FOUND)
        for inbox in self.inboxes.values():
            if inbox.account_id == account.id and int(agent_id) in inbox.members:
                inbox.members.remove(int(agent_id))
        return _empty_ok()

    def _do_list_inboxes(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        user, account, link = self._account_member(received, account_id)
        inboxes = [i for i in self.inboxes.values() if i.account_id == account.id]
        if link.role != "administrator":
            inboxes = [i for i in inboxes if user.id in i.members]  # agents see the inboxes they work in
        return _json(200, {"payload": [self._inbox_json(i) for i in inboxes]})

    def _do_inbox_members(self, received: ReceivedRequest, body: dict, account_id: str, inbox_id: str) -> _Reply:
        user, account, link = self._account_member(received, account_id)
        inbox = self._inbox_in(account, inbox_id)
        if link.role != "administrator" and user.id not in inbox.members:
            return _error(401, NOT_ALLOWED)
        return _json(200, self._members_payload(inbox))

    def _do_add_inbox_members(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)
        self._required(body, "inbox_id")
        inbox = self._inbox_in(account, body["inbox_id"])
        for uid in self._user_ids(account, body):
            if uid not in inbox.members:
                inbox.members.append(uid)
        return _json(200, self._members_payload(inbox))

    def _do_update_inbox_members(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)
        self._required(body, "inbox_id")
        inbox = self._inbox_in(account, body["inbox_id"])
        inbox.members = self._user_ids(account, body)  # everyone not listed is removed
        return _json(200, self._members_payload(inbox))

    def _do_remove_inbox_members(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)
        self._required(body, "inbox_id")
        inbox = self._inbox_in(account, body["inbox_id"])
        remove = set(self._user_ids(account, body))
        inbox.members = [uid for uid in inbox.members if uid not in remove]
        return _empty_ok()

    # ----- Platform API ------------------------------------------------------------------------

    def _do_platform_create_user(self, received: ReceivedRequest, body: dict) -> _Reply:
        self._platform_app(received)
        email = str(body.get("email") or "").strip().lower()
        if not email:
            return _invalid("Email can't be blank", "email")
        existing = next((u for u in self.users.values() if u.email == email), None)
        if existing is not None:
            return _json(200, self._user_json(existing))  # Chatwoot returns it unchanged, password ignored
        if not EMAIL.fullmatch(email):
            return _invalid("Email is invalid", "email")
        if not body.get("name"):
            return _invalid("Name can't be blank", "name")
        password = body.get("password")
        if not isinstance(password, str) or not 6 <= len(password) <= 128:
            return _invalid("Password is too short (minimum is 6 characters)", "password")
        if not (
            re.search(r"[A-Z]", password)
            and re.search(r"[a-z]", password)
            and re.search(r"[0-9]", password)
            and PASSWORD_SPECIAL.search(password)
        ):
            return _invalid(
                "Password must contain at least 1 uppercase letter, 1 lowercase letter, 1 number, "
                "and 1 special character",
                "password",
            )
        user = self.add_user(str(body["name"]), email, password=password)
        if isinstance(body.get("display_name"), str):
            user.display_name = body["display_name"]
        if isinstance(body.get("custom_attributes"), dict):
            user.custom_attributes = body["custom_attributes"]
        return _json(200, self._user_json(user))

    def _do_platform_add_account_user(self, received: ReceivedRequest, body: dict, account_id: str) -> _Reply:
        app = self._platform_app(received)
        account = self.accounts.get(int(account_id))
        if account is None:
            return _error(404, NOT_FOUND)
        if account.id not in app.account_ids:
            return _error(401, NOT_PERMISSIBLE)
        self._required(body, "user_id", "role")
        if body["role"] not in ROLES:
            return _invalid("Role is not included in the list", "role")
        user = self.users.get(body["user_id"]) if isinstance(body["user_id"], int) else None
        if user is None:
            return _invalid("User must exist", "user")
        link = self.account_users.get((account.id, user.id))
        if link is None:
            link = self.add_account_user(account.id, user.id, body["role"])
        link.role = body["role"]
        return _json(200, {"account_id": account.id, "user_id": user.id, "role": link.role})


def _widget_script(base_url: str, website_token: str) -> str:
    return (
        "<script>\n  (function(d,t) {\n"
        f'    var BASE_URL="{base_url}";\n'
        "    var g=d.createElement(t),s=d.getElementsByTagName(t)[0];\n"
        '    g.src=BASE_URL+"/packs/js/sdk.js"; g.defer = true; g.async = true;\n'
        "    s.parentNode.insertBefore(g,s);\n"
        "    g.onload=function(){\n"
        f"      window.chatwootSDK.run({{ websiteToken: '{website_token}', baseUrl: BASE_URL }})\n"
        '    }\n  })(document,"script");\n</script>\n'
    )


# ----- the HTTP side -------------------------------------------------------------------------------


def _handler_for(fake: FakeChatwoot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeChatwoot/1.0"
        timeout = 5  # an idle keep-alive connection is closed after this
        # The head and the body go out in two writes: without TCP_NODELAY the second waits for the
        # client's delayed ACK (about 40 ms an answer on Linux), which dominated every big test.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY_BYTES)) if length else b""
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the rest of the body is not read
            parts = urlsplit(self.path)
            received = ReceivedRequest(self.command, parts.path, parts.query, Headers(list(self.headers.items())), body)
            reply = fake.handle(received, self.headers.get("Host") or f"127.0.0.1:{fake.port}")
            try:
                self.send_response(reply.status)
                if reply.content_type:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a read timeout test)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def add_acme_with_ada(fake: FakeChatwoot, token: str) -> Account:
    """Seed account "Acme Support" with Ada Admin (ada@acme.test, holding `token`) as its administrator."""
    account = fake.add_account("Acme Support")
    ada = fake.add_user("Ada Admin", "ada@acme.test", token=token)
    fake.add_account_user(account.id, ada.id, "administrator")
    return account
