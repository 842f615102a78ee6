"""Check all on the Integrations page: a run on the task engine, its progress read from the database.

The page keeps only the run's id (st.session_state["check_run"]); any process's workers run the checks,
and a reloaded page finds the person's unfinished run again.
"""

from __future__ import annotations

from app_context import AppContext
from core.audit import Actor
from core.engine.runs import RunProgress
from core.errors import ConsoleError, NotFoundError
from core.integrations.checks import CheckAllScope
from core.models import utcnow
from core.words import count

RUN_KEY = "check_run"
RESULT_KEY = "check_result"


def start(ctx: AppContext, actor: Actor, scope: CheckAllScope) -> int | str:
    """The new run's id, or the sentence saying why it could not start (too many runs, the database)."""
    try:
        return ctx.tasks.start_check_all(actor, scope)
    except ConsoleError as exc:
        return str(exc)


def current_run(ctx: AppContext, actor: Actor, known: int | None) -> int | None:
    """The run this page shows: the one it started, or the person's unfinished one (after a reload)."""
    return known if known is not None else ctx.tasks.runs.unfinished(actor)


def read(ctx: AppContext, actor: Actor, run_id: int) -> RunProgress | None:
    try:
        return ctx.tasks.progress(actor, run_id)
    except NotFoundError:
        return None


def progress_text(progress: RunProgress, cancelling: bool) -> str:
    if cancelling:
        return f"Cancelling: letting the {count(progress.running, 'check')} already under way finish…"
    if progress.done + progress.skipped == 0 and progress.running == 0:
        return f"Waiting for the task engine to start the {count(progress.total, 'check')}…"
    return progress.line()


def engine_warning(ctx: AppContext) -> str | None:
    """A sentence when no worker runs the scheduler (so nothing runs checks), else None."""
    beat = ctx.tasks.heartbeat()
    if not beat.stale(utcnow(), ctx.settings.engine_tick_seconds):
        return None
    if beat.at is None:
        return (
            "No task engine worker has run yet, so checks wait in the queue. `make run` starts one with the "
            "app; with REDIS_URL set, start `python manage.py worker`."
        )
    return (
        f"The task engine's scheduler last ran at {beat.at:%Y-%m-%d %H:%M:%S} UTC, so no worker seems to run: "
        "checks wait in the queue. Start `python manage.py worker`, or restart the app."
    )


def failures(ctx: AppContext, actor: Actor, run_id: int) -> list[tuple[int, str, str]]:
    return ctx.tasks.runs.failures(actor, run_id)
