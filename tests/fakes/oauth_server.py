"""A fake OAuth 2 authorization server on pytest-httpserver (127.0.0.1): an authorize endpoint that
checks the request as the provider documents it and redirects back with a single-use code, and a token
endpoint that exchanges that code (exact redirect_uri, client authentication, PKCE S256), answering
errors in the provider's shape. Violations are collected, and any one fails the test that saw it.

RFC 6749 4.1 (authorization code), RFC 7636 (PKCE). Each provider's specifics are the arguments:
where its endpoints are, how the client authenticates, whether PKCE is required, what the token answer
holds, and extra callback parameters (Zoho's location and accounts-server).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from werkzeug import Request, Response


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    used: bool = False


@dataclass
class FakeAuthServer:
    httpserver: object
    authorize_path: str
    token_path: str
    client_id: str
    client_secret: str
    answer: Callable[[Grant], dict]
    auth_method: str = "client_secret_post"  # or client_secret_basic
    require_pkce: bool = False
    required_params: dict[str, str] = field(default_factory=dict)  # Zoho: access_type=offline
    callback_extra: dict[str, str] = field(default_factory=dict)
    # The provider's error body for a refused exchange (status, body); Zoho answers 200 with an error.
    error_shape: Callable[[str, str], tuple[int, dict]] = lambda error, text: (
        400,
        {"error": error, "error_description": text},
    )
    # The answer to a refresh_token grant at the same endpoint (HubSpot, Pipedrive), given the refresh token.
    refresh_answer: Callable[[str], dict | tuple[int, dict]] | None = None  # a tuple: (status, body)
    grants: dict[str, Grant] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)  # every callback address consent sent a browser to
    exchanges: int = 0

    def install(self) -> FakeAuthServer:
        server = self.httpserver
        server.expect_request(self.authorize_path, method="GET").respond_with_handler(self._authorize_http)  # type: ignore[attr-defined]
        server.expect_request(self.token_path, method="POST").respond_with_handler(self._token)  # type: ignore[attr-defined]
        return self

    # ----- authorize -------------------------------------------------------------------------

    def consent(self, authorize_url: str) -> str:
        """What the person's browser is redirected to after consenting at authorize_url (the callback)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        return self._redirect_for(query)

    def _redirect_for(self, query: dict[str, str]) -> str:
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if query.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if not query.get("redirect_uri"):
            problems.append("no redirect_uri")
        if not query.get("state") or len(query["state"]) < 22:
            problems.append("no unguessable state")
        challenge = query.get("code_challenge")
        if self.require_pkce and (not challenge or query.get("code_challenge_method") != "S256"):
            problems.append("PKCE S256 is required")
        for name, value in self.required_params.items():
            if query.get(name) != value:
                problems.append(f"{name} must be {value}")
        if "client_secret" in query:
            problems.append("the client secret was sent to the browser")
        if problems:
            self.violations += problems
            raise AssertionError("; ".join(problems))
        code = "code-" + secrets.token_urlsafe(24)
        self.grants[code] = Grant(self.client_id, query["redirect_uri"], query.get("scope", ""), challenge)
        params = {"code": code, "state": query["state"]} | self.callback_extra
        self.redirects.append(query["redirect_uri"] + "?" + urlencode(params))
        return self.redirects[-1]

    def _authorize_http(self, request: Request) -> Response:
        try:
            location = self._redirect_for({k: v for k, v in request.args.items()})
        except AssertionError as exc:
            return Response(f"bad authorization request: {exc}", status=400)
        return Response("", status=302, headers={"Location": location})

    # ----- token -----------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        self.exchanges += 1
        form = request.form
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token") or (
            grant_type == "refresh_token" and self.refresh_answer is None
        ):
            return self._error("unsupported_grant_type", "grant type not supported")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if self.auth_method == "client_secret_basic":
            if not header.startswith("Basic "):
                self.violations.append("client authentication must be HTTP Basic")
                return self._error("invalid_client", "client authentication failed")
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        elif header:
            self.violations.append("client authentication must be in the form body")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._error("invalid_client", "client authentication failed")
        if grant_type == "refresh_token" and self.refresh_answer is not None:
            self.exchanges -= 1  # counts authorization codes only
            answered = self.refresh_answer(form.get("refresh_token", ""))
            status, body = answered if isinstance(answered, tuple) else (200, answered)
            return Response(json.dumps(body), status=status, content_type="application/json")
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used:
            if grant is not None:
                grant.used = True
            return self._error("invalid_grant", "authorization code is invalid or was used")
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._error("invalid_grant", "redirect_uri mismatch")
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != grant.challenge:
                return self._error("invalid_grant", "invalid code verifier")
        elif self.require_pkce:
            return self._error("invalid_grant", "code verifier required")
        return Response(json.dumps(self.answer(grant)), status=200, content_type="application/json")

    def _error(self, error: str, text: str) -> Response:
        status, body = self.error_shape(error, text)
        return Response(json.dumps(body), status=status, content_type="application/json")
