"""The customer's pages of a connect link, served signed out beside the Streamlit app (app.py mounts
them through routes.py): GET /connect/<token> says who asks for what access, with a Connect button;
POST /connect/<token> sends the browser to the provider's consent page; GET /connect/done is where the
OAuth callback lands ("Connected. You can close this tab.").

These pages are small static HTML written here, every value escaped; they show nothing of the console's
staff data (no owner, no note, no integration list), set no cookie, are never cached, pass no Referer
(the address holds the link's token) and may not be framed. core/connect/links.py does the work; the
handlers import it when they first run, so declaring the routes loads nothing of it (route_services.py).
"""

from __future__ import annotations

import html

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from core.paths import LINK_DONE_PATH, LINK_PATH
from route_services import services

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # No script at all; a form posting to this page only. (No form-action: the answer redirects to the
    # provider, and browsers apply form-action to that redirect too.)
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1f2430}"
    "h1{font-size:1.4rem}li{margin:.3rem 0}.note{color:#5b6270;font-size:.9rem}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border-radius:.4rem;border:0;background:#1f6feb;color:#fff;"
    "cursor:pointer}"
)


def _page(title: str, *paragraphs: str, body_html: str = "", status: int = 200) -> HTMLResponse:
    """A page from plain texts (escaped here) and optional markup built from escaped parts."""
    text = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>'
        f"<body><h1>{html.escape(title)}</h1>{text}{body_html}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def link_page(request: Request) -> HTMLResponse:
    """GET /connect/<token>: who asks for what access, and Connect; or why the link does nothing."""
    from core.connect.links import LinkRefused, refusal_for  # imported on the first request (module docstring)

    ctx = await services()
    try:
        link = await run_in_threadpool(ctx.links.open, request.path_params["token"], _client(request))
    except LinkRefused as exc:
        return _page("Please wait", str(exc), status=429)
    if link.state != "opened":
        status = 404 if link.state == "unknown" else 410
        return _page("This link does nothing now", refusal_for(link.state), status=status)
    what = "reconnect" if link.reconnect else "connect"
    access = "".join(f"<li>{html.escape(words)}</li>" for words in link.access) or (
        f"<li>{html.escape('The access your ' + link.provider_name + ' administrator grants to the app.')}</li>"
    )
    expires = f"{link.expires_at:%Y-%m-%d %H:%M} UTC" if link.expires_at else "soon"
    form = (
        f"<p>It asks for:</p><ul>{access}</ul>"
        f'<form method="post"><button type="submit">Connect {html.escape(link.provider_name)}</button></form>'
        f'<p class="note">{html.escape(_fine_print(link.provider_name, expires))}</p>'
    )
    return _page(
        f"{link.company} asks to {what} your {link.provider_name} account",
        f"You will sign in at {link.provider_name} and choose whether to allow this. "
        f"{link.company} never sees your {link.provider_name} password.",
        body_html=form,
    )


def _fine_print(provider_name: str, expires: str) -> str:
    return (
        f"This link works once and until {expires}. You can withdraw the access at any time in your "
        f"{provider_name} settings."
    )


async def link_begin(request: Request):
    """POST /connect/<token>: on to the provider's consent page (an address the console builds)."""
    from core.connect.links import LinkRefused  # imported on the first request (module docstring)

    ctx = await services()
    try:
        address = await run_in_threadpool(ctx.links.begin, request.path_params["token"], _client(request))
    except LinkRefused as exc:
        return _page("This link cannot connect now", str(exc), status=400)
    return RedirectResponse(address, 303, headers=HEADERS)


async def link_done(request: Request) -> HTMLResponse:
    """GET /connect/done?result=connected|failed: where the callback lands a customer's flow."""
    if request.query_params.get("result") == "connected":
        return _page("Connected", "Connected. You can close this tab.")
    return _page(
        "Not connected",
        "The connection was not completed, so nothing was saved.",
        "Open your link again to try once more, or ask the person who sent it.",
    )


ROUTES = [
    Route(LINK_DONE_PATH, link_done, methods=["GET"]),
    Route(LINK_PATH + "{token}", link_page, methods=["GET"]),
    Route(LINK_PATH + "{token}", link_begin, methods=["POST"]),
]
