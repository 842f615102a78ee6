"""The console's services for the server's own routes (routes.py, connect_routes.py, bot_routes.py).

app.py imports the routes before the server answers, so the route modules import none of the services
or the machinery behind them: a handler asks for them here, on the first request that needs them, and
ui/state.py builds them once per process (the pages share them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from app_context import AppContext


async def services() -> AppContext:
    """The process's services (ui.state.context), imported and built off the event loop."""
    return await run_in_threadpool(_context)


def _context() -> AppContext:
    from ui import state  # imported here, on the first request: the server answers before the services load

    return state.context()
