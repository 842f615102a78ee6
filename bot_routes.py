"""The greeting bot's receiver, served signed out beside the Streamlit app (routes.py includes it):
POST /bots/chatwoot/<receiver id>/<secret> is the outgoing URL of the Chatwoot agent bot the console
created; POST /bots/chatwoot/<receiver id>/self-test answers the console's own signed test event.

Chatwoot does not sign agent-bot events, so the unguessable secret in the path is what authenticates
them (core/chatwoot/bot_events.py compares its keyed hash in constant time; a wrong one is 404 and calls
nothing). Bodies are capped before they are read in full; the answer is immediate (the work is an
engine task) and says nothing but a word. The receiver (core/chatwoot/bot_events.py) is imported on the
first event, so declaring the routes loads nothing of it (route_services.py).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.paths import BOT_PATH, SELF_TEST
from route_services import services

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _answer(status: int, result: str) -> JSONResponse:
    return JSONResponse({"result": result}, status_code=status, headers=HEADERS)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is (or says it is) larger than ``limit`` bytes: the rest is never read."""
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def bot_event(request: Request) -> JSONResponse:
    """POST /bots/chatwoot/<receiver id>/<secret>: one Chatwoot agent-bot event."""
    from core.chatwoot.bot_keys import MAX_BODY  # imported on the first event (module docstring)

    body = await read_capped(request, MAX_BODY)
    if body is None:
        return _answer(413, "too large")
    ctx = await services()
    params = request.path_params
    received = await run_in_threadpool(ctx.bot_receiver.receive, params["receiver_id"], params["secret"], body)
    return _answer(received.status, received.result)


async def bot_self_test(request: Request) -> JSONResponse:
    """POST /bots/chatwoot/<receiver id>/self-test: the console's signed test event, answered with a proof."""
    body = await read_capped(request, 4096)
    if body is None:
        return _answer(413, "too large")
    ctx = await services()
    answer = await run_in_threadpool(ctx.bot_receiver.answer_self_test, request.path_params["receiver_id"], body)
    if isinstance(answer, str):  # the proof; otherwise the receiver's refusal
        return JSONResponse({"result": "ok", "proof": answer}, headers=HEADERS)
    return _answer(answer.status, answer.result)


ROUTES = [
    Route(BOT_PATH + "{receiver_id}/" + SELF_TEST, bot_self_test, methods=["POST"]),
    Route(BOT_PATH + "{receiver_id}/{secret}", bot_event, methods=["POST"]),
]
