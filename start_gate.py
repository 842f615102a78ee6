"""What waits while a new server imports (app.py): first the first page's modules, then, once a page has
been drawn (Home.py calls page_shown()) or after a few seconds when nobody opens one, the task engine's.

While an import runs, a new page session and a request to one of the console's own routes wait: both
import modules the start is importing, and Python's imports of one tree of modules from two threads at
once can deadlock on its circular imports. The rest (the page's files, the health check) passes at once,
so the browser loads the page meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

# Seconds the engine waits for a first page before it starts anyway (a server nobody has opened yet).
FIRST_PAGE_WAIT = 3.0
_first_page = threading.Event()


def page_shown() -> None:
    """Called by Home.py once it has drawn a page: the engine may start now."""
    _first_page.set()


async def first_page_shown(timeout: float = FIRST_PAGE_WAIT) -> None:
    """Returns once a page has been drawn, or after `timeout` seconds."""
    await run_in_threadpool(_first_page.wait, timeout)


class ImportGate:
    """ASGI middleware: while ``settled`` is clear (an import runs), holds a page's session (Streamlit's
    websocket) and a request to one of ``routes`` until it is set again."""

    def __init__(self, app: ASGIApp, settled: asyncio.Event, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.settled = settled
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.settled.is_set() and self.waits(scope):
            await self.settled.wait()
        await self.app(scope, receive, send)

    def waits(self, scope: Scope) -> bool:
        if scope["type"] == "websocket":
            return True
        return scope["type"] == "http" and any(route.matches(scope)[0] is not Match.NONE for route in self.routes)
