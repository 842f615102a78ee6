"""The server's routes beside the Streamlit app (app.py mounts them): the sign-in cookie, set and cleared.

The sign-in cookie is HttpOnly, so no script, neither the console's nor anything a customer's server
sends into a page, can read it; only the server can set it. After the password is checked the page holds
a single-use ticket for two minutes (core/sessions.py stores only its keyed hash) and posts it here in the
request body; the answer sets the cookie. Both routes accept only a same-origin JSON POST: a cross-site
form cannot send JSON, a cross-site fetch of JSON needs a CORS preflight this server never grants, and
the Origin (or Sec-Fetch-Site) header must name this server.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ui import state
from ui.auth import SESSION_PATH, SIGN_OUT_PATH

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
    ctx = await run_in_threadpool(state.context)
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
    ctx = await run_in_threadpool(state.context)
    await run_in_threadpool(ctx.sessions.revoke, request.cookies.get(ctx.settings.cookie_name))
    response = JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
    response.headers.append("set-cookie", cookie_header(ctx.settings.cookie_name, "", 0, is_https(request)))
    return response


ROUTES = [
    Route(SESSION_PATH, set_session_cookie, methods=["POST"]),
    Route(SIGN_OUT_PATH, clear_session_cookie, methods=["POST"]),
]
