"""Start the console with `streamlit run app.py`: Home.py plus the server's own routes (routes.py), and,
on the embedded default, the task engine's consumer threads for as long as the server runs.

The routes set and clear the HttpOnly sign-in cookie; `streamlit run Home.py` would serve the pages
without them, and nobody could stay signed in across a reload.

A new server spends the time the browser takes to load the page's files importing what the first page
needs (FIRST_PAGE: the sign-in form, Overview, Integrations), and starts the engine once a first page has
been drawn (or a few seconds after the server's start when nobody opens one), so the engine's machinery
is loaded while the browser shows that page, not before it. While either import runs, a new page session
and a request to one of the console's routes wait for it to end (start_gate.py).
"""

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from routes import ROUTES
from start_gate import ImportGate, first_page_shown

log = logging.getLogger("console.engine")
# The modules of Home.py, the sign-in form, Overview and Integrations, beyond Streamlit's own.
FIRST_PAGE = (
    "ui.auth",
    "ui.connect_links",
    "ui.state",
    "ui.check_all",
    "ui.connect",
    "ui.failing",
    "ui.health",
    "ui.integration_dialogs",
    "ui.integration_list",
    "ui.tables",
    "ui.text",
    "core.integrations.exports",
    "pandas",
    "pyarrow",  # the tables (ui.tables), what Streamlit sends a table as
)
settled = asyncio.Event()  # clear while the server imports (the first page's modules, then the engine's)


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    start = asyncio.create_task(_start_engine())
    try:
        yield
    finally:
        consumer = await start
        if consumer is not None:
            from core.engine.consumer import stop_embedded

            await run_in_threadpool(stop_embedded, consumer)


async def _start_engine():
    try:
        await run_in_threadpool(_import_first_page)
    finally:
        settled.set()
    await first_page_shown()
    settled.clear()
    try:
        return await run_in_threadpool(_start_consumer)
    except Exception:  # the server runs on: the pages meet the same problem and say what to fix
        log.exception("task engine not started")
        return None
    finally:
        settled.set()


def _import_first_page() -> None:
    for module in FIRST_PAGE:
        try:
            importlib.import_module(module)
        except Exception:  # the page meets the same problem and says what to fix
            log.exception("could not load %s ahead of the first page", module)
            return


def _start_consumer():
    """ENGINE_EMBEDDED_WORKERS consumer threads (none by default when REDIS_URL is set: run workers)."""
    import app_context  # imported here, off the event loop: the server answers while the engine loads
    from core.engine.consumer import start_embedded
    from core.errors import ConsoleError

    try:
        context = app_context.build()
    except ConsoleError as exc:  # the pages say what to fix; the engine waits for a working set-up
        log.warning("task engine not started: %s", exc)
        return None
    workers = context.settings.engine_embedded_workers
    if workers == 0:
        log.info("task engine: no consumer in this process (ENGINE_EMBEDDED_WORKERS=0); run manage.py worker")
        return None
    return start_embedded(context.tasks.huey, workers, context.settings.engine_tick_seconds)


app = st.App(
    "Home.py",
    routes=ROUTES,
    middleware=[Middleware(ImportGate, settled=settled, routes=ROUTES)],
    lifespan=lifespan,
)
