"""The server's routes beside the Streamlit app (app.py mounts them): the sign-in cookie, set and cleared,
the OAuth callback (GET /oauth/callback, core/connect/flows.py does the work), and a connect link's
public pages (connect_routes.py), and the Chatwoot greeting bot's receiver (bot_routes.py).

The sign-in cookie is HttpOnly, so no script, neither the console's nor anything a customer's server
sends into a page, can read it; only the server can set it. After the password is checked the page holds
a single-use ticket for two minutes (core/sessions.py stores only its keyed hash) and posts it here in the
request body; the answer sets the cookie. Both routes accept only a same-origin JSON POST: a cross-site
form cannot send JSON, a cross-site fetch of JSON needs a CORS preflight this server never grants, and
the Origin (or Sec-Fetch-Site) header must name this server.

The routes are declared when app.py is imported, before the server answers; what a handler needs of the
console (its services, core's errors) it imports when it first runs (route_services.py).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from bot_routes import ROUTES as BOT_ROUTES
from connect_routes import ROUTES as CONNECT_ROUTES
from core.paths import CALLBACK_PATH, SESSION_PATH, SIGN_OUT_PATH
from route_services import services

MAX_BODY = 1024


def is_https(request: Request) -> bool:
    """Served over HTTPS: directly, or behind a proxy that says so (a false claim only makes the cookie
    Secure, which a plain-HTTP browser then does not send back: the claimant signs itself out)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def same_origin_problem(request: Request) -> str | None:
    """Why this request may not come from the console's own page, or None."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return "expected a JSON body"
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return "not a same-origin request"
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None, ""}
    if not origin or urlsplit(origin).netloc not in hosts:
        return "the request's origin is not this server"
    return None


async def _json_body(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_BODY:
        return {}
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "message": message}, status_code=status, headers={"Cache-Control": "no-store"})


async def set_session_cookie(request: Request) -> JSONResponse:
    """POST /auth/session {"ticket": "..."}: the sign-in cookie for a live, unused ticket, once."""
    if problem := same_origin_problem(request):
        return _refused(403, f"Refused: {problem}.")
    ticket = (await _json_body(request)).get("ticket")
    ctx = await services()
    redeemed = await run_in_threadpool(ctx.sessions.redeem, ticket)
    if redeemed is None:
        return _refused(403, "This sign-in has expired or was already used. Sign in again.")
    token, seconds_left = redeemed
    max_age = int(min(seconds_left, ctx.settings.cookie_expiry_days * 86400))
    response = JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
    response.headers.append("set-cookie", cookie_header(ctx.settings.cookie_name, token, max_age, is_https(request)))
    return response


async def clear_session_cookie(request: Request) -> JSONResponse:
    """POST /auth/sign-out: revoke the session the cookie names (the tab has revoked its own) and clear it."""
    if problem := same_origin_problem(request):
        return _refused(403, f"Refused: {problem}.")
    ctx = await services()
    await run_in_threadpool(ctx.sessions.revoke, request.cookies.get(ctx.settings.cookie_name))
    response = JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
    response.headers.append("set-cookie", cookie_header(ctx.settings.cookie_name, "", 0, is_https(request)))
    return response


# The callback's answers are never cached, and the address they came from (which held the code) is not
# passed on as a Referer.
_CALLBACK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_CALLBACK_PARAMS = ("state", "code", "error", "error_description", "accounts-server", "location")


async def oauth_callback(request: Request):
    """GET /oauth/callback?code=...&state=...: the provider sends the browser here after consent.

    The answer is a redirect to a fixed console page carrying only an opaque outcome id (never a token or
    the code), or a plain-text refusal; no address from the request is ever redirected to."""
    from core.connect.flows import FlowRefused  # imported on the first callback (module docstring)

    params: dict[str, str] = {}
    for name in _CALLBACK_PARAMS:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            return PlainTextResponse("Refused: a parameter was given twice.", 400, headers=_CALLBACK_HEADERS)
        if values:
            params[name] = values[0]
    ctx = await services()
    handle = await run_in_threadpool(ctx.sessions.handle_for, request.cookies.get(ctx.settings.cookie_name))
    client = request.client.host if request.client else "unknown"
    try:
        outcome = await run_in_threadpool(ctx.connect.complete, params, handle, client)
    except FlowRefused as exc:
        return PlainTextResponse(str(exc), 400, headers=_CALLBACK_HEADERS)
    landing = await run_in_threadpool(ctx.connect.landing, outcome)
    return RedirectResponse(landing, 303, headers=_CALLBACK_HEADERS)


ROUTES = [
    Route(SESSION_PATH, set_session_cookie, methods=["POST"]),
    Route(SIGN_OUT_PATH, clear_session_cookie, methods=["POST"]),
    Route(CALLBACK_PATH, oauth_callback, methods=["GET"]),
    *CONNECT_ROUTES,
    *BOT_ROUTES,
]
