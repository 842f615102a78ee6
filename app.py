"""Start the console with `streamlit run app.py`: Home.py plus the server's own routes (routes.py), and,
on the embedded default, the task engine's consumer threads for as long as the server runs.

The routes set and clear the HttpOnly sign-in cookie; `streamlit run Home.py` would serve the pages
without them, and nobody could stay signed in across a reload.

The engine starts beside the server: while it imports and builds the services (app_context.py), the
server already answers and the browser loads the page's files. A page's session and a request to one of
the console's routes wait until that start is over (start_gate.py).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from routes import ROUTES
from start_gate import AfterEngineStart

log = logging.getLogger("console.engine")
engine_started = asyncio.Event()  # set once the engine's start is over, however it ended


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
        return await run_in_threadpool(_start_consumer)
    except Exception:  # the server runs on: the pages meet the same problem and say what to fix
        log.exception("task engine not started")
        return None
    finally:
        engine_started.set()


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
    middleware=[Middleware(AfterEngineStart, started=engine_started, routes=ROUTES)],
    lifespan=lifespan,
)
