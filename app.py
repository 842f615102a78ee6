"""Start the console with `streamlit run app.py`: Home.py plus the server's own routes (routes.py), and,
on the embedded default, the task engine's consumer threads for as long as the server runs.

The routes set and clear the HttpOnly sign-in cookie; `streamlit run Home.py` would serve the pages
without them, and nobody could stay signed in across a reload.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.concurrency import run_in_threadpool

from routes import ROUTES

log = logging.getLogger("console.engine")


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    consumer = await run_in_threadpool(_start_consumer)
    try:
        yield
    finally:
        if consumer is not None:
            from core.engine.consumer import stop_embedded

            await run_in_threadpool(stop_embedded, consumer)


def _start_consumer():
    """ENGINE_EMBEDDED_WORKERS consumer threads (none by default when REDIS_URL is set: run workers)."""
    import app_context  # imported here: the server answers before the engine loads
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


app = st.App("Home.py", routes=ROUTES, lifespan=lifespan)
