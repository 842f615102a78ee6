"""Check all on the Integrations page: a run on the task engine, its progress read from the database.

The page keeps only the run's id (st.session_state["check_run"]); any process's workers run the checks,
and a reloaded page finds the person's unfinished run again. Its scope is the list's provider filter (and,
for administrators, whose integrations and their owners' tier); a result shows only while that scope is
still the one chosen. The failing checks are grouped by cause (core.integrations.classify), each linking
to its integration's page under its current name.
"""

from __future__ import annotations

from collections import defaultdict

import streamlit as st

from app_context import AppContext
from core.audit import Actor
from core.engine.runs import RunProgress
from core.errors import ConsoleError, NotFoundError
from core.integrations.checks import CheckAllScope
from core.integrations.classify import CLASS_TEXT, CheckClass
from core.models import utcnow
from core.tiers import Tier
from core.words import count, verb
from providers import CATALOG
from ui import state
from ui.text import esc

RUN_KEY = "check_run"
RESULT_KEY = "check_result"
SCOPE_KEY = "check_result_scope"  # the scope of the run RESULT_KEY describes
FAILING_LIMIT = 200
PAGE = "app_pages/integration.py"


def start(ctx: AppContext, actor: Actor, scope: CheckAllScope) -> int | str:
    """The new run's id, or the sentence saying why it could not start (too many runs, the database)."""
    try:
        return ctx.tasks.start_check_all(actor, scope)
    except ConsoleError as exc:
        return str(exc)


def start_selected(ctx: AppContext, actor: Actor, ids: list[int]) -> str | None:
    """Test the selected rows as a run on the engine (the section above the list shows its progress);
    None when it started, else the sentence saying why not."""
    scope = CheckAllScope(ids=tuple(ids))
    st.session_state.pop(RESULT_KEY, None)
    started = start(ctx, actor, scope)
    if isinstance(started, str):
        return started
    st.session_state[RUN_KEY] = started
    st.session_state[SCOPE_KEY] = scope
    return None


def current_run(ctx: AppContext, actor: Actor, known: int | None) -> int | None:
    """The run this page shows: the one it started, or the person's unfinished one (after a reload)."""
    return known if known is not None else ctx.runs.unfinished(actor)


def read(ctx: AppContext, actor: Actor, run_id: int) -> RunProgress | None:
    try:
        return ctx.runs.progress(actor, run_id)
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
    beat = ctx.scheduler.heartbeat()
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
    return ctx.runs.failures(actor, run_id)


def failing_checks(ctx: AppContext, actor: Actor, run_id: int) -> list[tuple[int, str, str, str]]:
    return ctx.runs.failing_checks(actor, run_id, FAILING_LIMIT)


def by_cause(failing: list[tuple[int, str, str, str]]) -> list[tuple[CheckClass | None, list[tuple[int, str, str]]]]:
    """The failures per cause, the largest group first; a cause this version does not know is None."""
    groups: dict[CheckClass | None, list[tuple[int, str, str]]] = defaultdict(list)
    for integration_id, name, message, check_class in failing:
        try:
            cause: CheckClass | None = CheckClass(check_class)
        except ValueError:
            cause = None
        groups[cause].append((integration_id, name, message))
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def cause_title(cause: CheckClass | None, n: int) -> str:
    words = "Other" if cause is None else cause.value.replace("_", " ").capitalize()
    if cause == CheckClass.AUTH:
        words = "Credentials refused"
    elif cause == CheckClass.TLS:
        words = "Secure connection (TLS)"
    return f"{words}: {count(n, 'integration')}"


# ----- the section ---------------------------------------------------------------------------------


def scope_controls(actor: Actor, provider: str | None, running: bool) -> CheckAllScope:
    """Administrators choose whose integrations and which owners' tier; the provider is the list's filter.
    The boxes stay on the page during a run (disabled), so the scope is the same after it."""
    if not actor.is_admin:
        return CheckAllScope(provider=provider)
    boxes = st.container(horizontal=True)
    everyone = boxes.selectbox("Whose", ["Mine", "Everyone's"], key="check_whose", disabled=running) == "Everyone's"
    tiers = {"All tiers": None, **{t.label: t.name for t in Tier}}
    tier = boxes.selectbox("Owner's tier", list(tiers), key="check_tier", disabled=running)
    return CheckAllScope(everyone, tiers[tier], provider)


@st.fragment(run_every=1.0)
def check_progress(ctx: AppContext, actor: Actor, run_id: int) -> None:
    if state.fresh_actor(actor) is None:  # this fragment reruns without Home.py's check
        ctx.tasks.cancel(actor, run_id)
        st.session_state.pop(RUN_KEY, None)
        st.session_state[RESULT_KEY] = state.refusal(actor) + " The check-all was cancelled."
        st.rerun(scope="app")
    progress = read(ctx, actor, run_id)
    if progress is None or progress.finished:
        st.session_state.pop(RUN_KEY, None)
        st.session_state[RESULT_KEY] = run_id
        st.rerun(scope="app")
        return
    cancelling = progress.cancelled
    st.progress(progress.fraction, text=progress_text(progress, cancelling))
    if warning := engine_warning(ctx):
        st.warning(warning)
    if not cancelling and st.button("Cancel", key="check_cancel", icon=":material/stop_circle:"):
        ctx.tasks.cancel(actor, run_id)
        st.rerun(scope="fragment")


def check_result(ctx: AppContext, actor: Actor, scope: CheckAllScope) -> None:
    """The last run's outcome, while it still describes the chosen scope (another filter: it goes)."""
    shown = st.session_state.get(SCOPE_KEY, scope)
    if shown != scope and not shown.ids:  # a run of selected rows stays until the next run
        st.session_state.pop(RESULT_KEY, None)
        st.session_state.pop(SCOPE_KEY, None)
    outcome = st.session_state.get(RESULT_KEY)
    if isinstance(outcome, str):
        st.error(esc(outcome))
    elif isinstance(outcome, int):
        progress = read(ctx, actor, outcome)
        if progress is None:
            return
        (st.warning if progress.failed or progress.skipped or progress.cancelled else st.success)(progress.line())
        if failing := failing_checks(ctx, actor, outcome):
            more = "+" if len(failing) >= FAILING_LIMIT else ""
            with st.expander(f"Failing ({len(failing)}{more}), by cause", expanded=len(failing) <= 10):
                failing_list(failing)


def failing_list(failing: list[tuple[int, str, str, str]]) -> None:
    for cause, rows in by_cause(failing):
        st.markdown(f"**{cause_title(cause, len(rows))}**")
        if cause is not None:
            sentence, next_step = CLASS_TEXT[cause]
            st.caption(f"{sentence} {next_step}")
        for integration_id, name, message in rows:
            left, right = st.columns([2, 5])
            left.page_link(
                PAGE, label=esc(name), icon=":material/arrow_forward:", query_params={"id": str(integration_id)}
            )
            right.caption(esc(message))


def section(ctx: AppContext, actor: Actor, provider: str | None, stale: int) -> None:
    """The Check all box: its scope, the button or the run's progress, the last result, the stale count."""
    hours, settings = ctx.settings.stale_after_hours, ctx.settings
    with st.container(border=True):
        run_id = current_run(ctx, actor, st.session_state.get(RUN_KEY))
        controls, action = st.columns([3, 1], vertical_alignment="bottom")
        with controls:
            scope = scope_controls(actor, provider, running=run_id is not None)
        which = "every provider" if provider is None else CATALOG.get(provider).name
        whose = "" if actor.is_admin else "your "
        st.caption(f"**Health check**: {whose}active integrations of {which} (the Provider filter above).")
        explained = (
            f"Re-test every active integration in this scope now, on the task engine: at most "
            f"{settings.check_concurrency} at a time and {settings.check_per_host} per customer host. Each is also "
            f"checked on its own schedule. Stale: not checked for {hours:g} hours."
        )
        if run_id is not None:
            st.session_state[RUN_KEY] = run_id
            check_progress(ctx, actor, run_id)
        elif action.button(
            "Check all",
            key="check_all",
            type="primary",
            icon=":material/monitor_heart:",
            help=explained,
            width="stretch",
        ):
            st.session_state.pop(RESULT_KEY, None)
            started = start(ctx, actor, scope)
            st.session_state[RUN_KEY if isinstance(started, int) else RESULT_KEY] = started
            st.session_state[SCOPE_KEY] = scope
            st.rerun()
        check_result(ctx, actor, scope)
        if stale:
            st.warning(
                f"{count(stale, 'active integration')} {verb(stale, 'is', 'are')} stale: "
                f"not checked for {hours:g} hours. Choose **Stale** under Status to list them."
            )
