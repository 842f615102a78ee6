"""What waits for the task engine's start (app.py starts it beside the server): a page's session and a
request to one of the console's own routes. Both import the services the start is importing, and
Python's imports of one tree of modules from two threads at once can deadlock on its circular imports.
The rest (the page's files, the health check) passes at once, so the browser loads the page meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


class AfterEngineStart:
    """ASGI middleware: holds a page's session (Streamlit's websocket) and a request to one of ``routes``
    until ``started`` is set."""

    def __init__(self, app: ASGIApp, started: asyncio.Event, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.started = started
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started.is_set() and self.waits(scope):
            await self.started.wait()
        await self.app(scope, receive, send)

    def waits(self, scope: Scope) -> bool:
        if scope["type"] == "websocket":
            return True
        return scope["type"] == "http" and any(route.matches(scope)[0] is not Match.NONE for route in self.routes)
