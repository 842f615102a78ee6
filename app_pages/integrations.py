"""Integrations: the catalog of types with tier gates, the user's integrations, add/edit/test/toggle/delete."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.catalog import INTEGRATION_TYPES
from core.integrations import exports
from core.integrations.checks import CheckAllScope
from core.integrations.health import Health
from core.integrations.service import IntegrationView, ListQuery
from core.tiers import FEATURE_MIN_TIER, UNLIMITED, Tier
from core.words import count, verb
from providers import CATALOG
from ui import check_all, connect, reads, state
from ui.integration_dialogs import open_delete, open_dialog, show_dialogs, show_result
from ui.text import esc

ctx, actor = state.context(), state.actor()
service = ctx.integrations
tier = Tier.parse(actor.tier)
STATUS_LABELS = {"connected": "Connected", "error": "Error", "unknown": "Not tested"}
ADD_LABELS = {"CRM": "Add CRM integration", "DATABASE": "Add database", "API": "Add API", "WEBHOOK": "Add webhook"}
# Cards that open a page of their own: type key -> (page, link label, icon).
TYPE_PAGES = {
    "HELPDESK": ("app_pages/helpdesk.py", "Open Helpdesk", ":material/support_agent:"),
    "CHAT_WIDGET": ("app_pages/widget.py", "Open Chat widget", ":material/chat:"),
}


# ----- page sections -----------------------------------------------------------------------


def type_card(kind) -> None:
    minimum = FEATURE_MIN_TIER[kind.key]
    with st.container(border=True):
        st.markdown(f"**{kind.name}**")
        st.caption(kind.description)
        if tier < minimum:
            st.markdown(f"🔒 Needs the **{minimum.label}** tier (yours: {tier.label}).")
        elif not kind.available:
            st.markdown(f":gray[{kind.note}]")
        elif kind.key in TYPE_PAGES:
            page, label, icon = TYPE_PAGES[kind.key]
            st.page_link(page, label=label, icon=icon)
        elif st.button(ADD_LABELS.get(kind.key, f"Add {kind.name}"), key=f"add-{kind.key}", type="primary"):
            open_dialog("add", category=kind.key)
            st.rerun()


def catalog_section() -> None:
    used, allowed = service.usage(actor)
    st.subheader("Connect something new")
    limit_text = "no limit" if allowed == UNLIMITED else f"{used} of {allowed} integrations used"
    st.caption(f"{tier.label} tier: {limit_text}.")
    columns = st.columns(3)
    for index, kind in enumerate(INTEGRATION_TYPES):
        with columns[index % 3]:
            type_card(kind)


def status_label(view: IntegrationView) -> str:
    label = STATUS_LABELS.get(view.status, view.status)
    return f"{label} · stale" if view.stale else label


def integrations_table(views) -> None:
    frame = pd.DataFrame(
        [
            {
                "Name": v.name,
                "Provider": v.provider_name,
                "Health": Health.parse(v.health).label,
                "Status": status_label(v),
                "Last checked": v.last_checked_at,
                "Active": v.is_active,
                "Message": v.status_message or "",
                **({"Owner": v.owner} if actor.is_admin else {}),
                "Page": f"integration?id={v.id}",  # its own page (app_pages/integration.py)
            }
            for v in views
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Last checked": st.column_config.DatetimeColumn("Last checked (UTC)", format="YYYY-MM-DD HH:mm"),
            "Active": st.column_config.CheckboxColumn("Active"),
            "Page": st.column_config.LinkColumn("Page", display_text="Open", help="The integration's own page"),
        },
    )


def export_buttons(query: ListQuery) -> None:
    """Downloads of every integration matching the search (not just this page), built only when clicked;
    secrets are masked in both formats."""

    left, right, _ = st.columns([1, 1, 4])
    left.download_button(
        "Export CSV",
        state.deferred(lambda fresh: exports.export_csv(service.matching(fresh, query)), actor),
        "integrations.csv",
        "text/csv",
        icon=":material/download:",
    )
    right.download_button(
        "Export JSON",
        state.deferred(lambda fresh: exports.export_json(service.matching(fresh, query)), actor),
        "integrations.json",
        "application/json",
        icon=":material/download:",
    )


def actions(views) -> None:
    by_id = {v.id: v for v in views}
    chosen = st.selectbox(
        "Manage an integration",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].provider_name} · #{i}",
        key="manage_choice",
    )
    view = by_id[chosen]
    cols = st.columns(4)
    if cols[0].button("Test connection", key="act-test", width="stretch"):
        with st.spinner(f"Testing {esc(view.name)}…"):
            result = service.test(actor, view.id)
        st.session_state["last_test"] = (view.id, result)
        reads.forget()
        st.rerun()
    if cols[1].button("Edit", key="act-edit", width="stretch"):
        open_dialog("edit", view.id)
        st.rerun()
    toggle_label = "Deactivate" if view.is_active else "Activate"
    if cols[2].button(toggle_label, key="act-toggle", width="stretch"):
        service.set_active(actor, view.id, not view.is_active)
        reads.forget()
        state.flash(f"{view.name} is now {'active' if not view.is_active else 'inactive'}.")
        st.rerun()
    if cols[3].button("Delete", key="act-delete", width="stretch"):
        open_delete(view.id)
        st.rerun()
    st.page_link("app_pages/integration.py", label=f"Open {esc(view.name)}'s page", query_params={"id": str(view.id)})
    last = st.session_state.get("last_test")
    if last and last[0] == view.id:
        show_result(last[1])


# ----- check all ---------------------------------------------------------------------------


def check_scope() -> CheckAllScope:
    """Administrators choose whose integrations; members always check their own."""
    if not actor.is_admin:
        return CheckAllScope()
    whose, tier_col, provider_col = st.columns(3)
    everyone = whose.selectbox("Whose", ["Mine", "Everyone's"], key="check_whose") == "Everyone's"
    tier_choice = tier_col.selectbox("Owner's tier", ["All tiers", *[t.name for t in Tier]], key="check_tier")
    providers = {"All providers": None, **{p.name: p.key for p in CATALOG if p.available}}
    provider_choice = provider_col.selectbox("Provider", list(providers), key="check_provider")
    return CheckAllScope(everyone, None if tier_choice == "All tiers" else tier_choice, providers[provider_choice])


@st.fragment(run_every=1.0)
def check_progress(run_id: int) -> None:
    if state.fresh_actor(actor) is None:  # this fragment reruns without Home.py's check
        ctx.tasks.cancel(actor, run_id)
        st.session_state.pop(check_all.RUN_KEY, None)
        st.session_state[check_all.RESULT_KEY] = state.refusal(actor) + " The check-all was cancelled."
        st.rerun(scope="app")
    progress = check_all.read(ctx, actor, run_id)
    if progress is None or progress.finished:
        st.session_state.pop(check_all.RUN_KEY, None)
        st.session_state[check_all.RESULT_KEY] = run_id
        st.rerun(scope="app")
        return
    cancelling = progress.cancelled
    st.progress(progress.fraction, text=check_all.progress_text(progress, cancelling))
    if warning := check_all.engine_warning(ctx):
        st.warning(warning)
    if not cancelling and st.button("Cancel", key="check_cancel", icon=":material/stop_circle:"):
        ctx.tasks.cancel(actor, run_id)
        st.rerun(scope="fragment")


def check_result() -> None:
    outcome = st.session_state.get(check_all.RESULT_KEY)
    if isinstance(outcome, str):
        st.error(esc(outcome))
    elif isinstance(outcome, int):
        progress = check_all.read(ctx, actor, outcome)
        if progress is None:
            return
        (st.warning if progress.failed or progress.skipped or progress.cancelled else st.success)(progress.line())
        if failing := check_all.failures(ctx, actor, outcome):
            with st.expander(f"Failing ({len(failing)}{'+' if len(failing) >= 200 else ''})"):
                for _, name, message in failing:
                    st.markdown(f"- **{esc(name)}**: {esc(message)}")


def check_all_section(stale: int) -> None:
    hours = ctx.settings.stale_after_hours
    settings = ctx.settings
    with st.container(border=True):
        st.markdown("**Health check**")
        st.caption(
            f"Re-test every active integration now, on the task engine: at most {settings.check_concurrency} "
            f"at a time and {settings.check_per_host} per customer host, across every worker. Each is also "
            f"checked on its own schedule. Stale: not checked for {hours:g} hours."
        )
        run_id = check_all.current_run(ctx, actor, st.session_state.get(check_all.RUN_KEY))
        if run_id is not None:
            st.session_state[check_all.RUN_KEY] = run_id
            check_progress(run_id)
        else:
            scope = check_scope()
            if st.button("Check all", key="check_all", type="primary", icon=":material/monitor_heart:"):
                st.session_state.pop(check_all.RESULT_KEY, None)
                started = check_all.start(ctx, actor, scope)
                st.session_state[check_all.RUN_KEY if isinstance(started, int) else check_all.RESULT_KEY] = started
                st.rerun()
        check_result()
        if stale:
            st.warning(
                f"{count(stale, 'active integration')} {verb(stale, 'is', 'are')} stale: "
                f"not checked for {hours:g} hours. "
                "Choose **Stale** under Status below to list them."
            )


# ----- the list ----------------------------------------------------------------------------


LIST_STATUSES = {
    "All statuses": None,
    "Connected": "connected",
    "Error": "error",
    "Not tested": "unknown",
    "Stale": "stale",
}
PAGE_SIZE = 50
ANY_HEALTH = "Any health"
HEALTH_FILTERS = {ANY_HEALTH: None, **{h.label: h.value for h in Health}}


def health_filter(column) -> str | None:
    """The health filter, which a link can set (?health=failing, from Overview and Statistics): the address
    and the box agree, so a filtered list can be shared by its address."""
    wanted = st.query_params.get("health")
    if wanted != st.session_state.get("list_health_param"):  # arrived by a link
        st.session_state["list_health"] = next((k for k, v in HEALTH_FILTERS.items() if v == wanted), ANY_HEALTH)
    label = column.selectbox("Health", list(HEALTH_FILTERS), key="list_health", label_visibility="collapsed")
    chosen = HEALTH_FILTERS[label]
    if chosen != wanted:
        if chosen:
            st.query_params["health"] = chosen
        else:
            st.query_params.pop("health", None)
    st.session_state["list_health_param"] = chosen
    return chosen


def list_query() -> ListQuery:
    """Search, filters and page: the list is cut in the database, so any number of integrations stays quick."""
    search_col, status_col, health_col, provider_col = st.columns([3, 1, 1, 1])
    search = search_col.text_input(
        "Search",
        key="list_search",
        placeholder="Name, owner or #id" if actor.is_admin else "Name or #id",
        label_visibility="collapsed",
    )
    status = status_col.selectbox("Status", list(LIST_STATUSES), key="list_status", label_visibility="collapsed")
    providers = {"All providers": None, **{p.name: p.key for p in CATALOG}}
    provider = provider_col.selectbox("Provider", list(providers), key="list_provider", label_visibility="collapsed")
    health = health_filter(health_col)
    query = ListQuery(search, LIST_STATUSES[status], providers[provider], health=health, limit=PAGE_SIZE)
    if st.session_state.get("list_filters") != query:  # new filters start at the first page
        st.session_state["list_filters"] = query
        st.session_state["list_offset"] = 0
    return replace(query, offset=st.session_state.get("list_offset", 0))


def pager(page) -> None:
    first, last = page.offset + 1, page.offset + len(page.views)
    left, middle, right = st.columns([1, 4, 1])
    middle.caption(f"Showing {first}–{last} of {page.total}")
    if left.button("Previous", key="list_prev", disabled=page.offset == 0, icon=":material/chevron_left:"):
        st.session_state["list_offset"] = max(0, page.offset - page.limit)
        st.rerun()
    if right.button("Next", key="list_next", disabled=last >= page.total, icon=":material/chevron_right:"):
        st.session_state["list_offset"] = page.offset + page.limit
        st.rerun()


def integrations_section() -> None:
    st.subheader("All integrations" if actor.is_admin else "Your integrations")
    stats = service.stats(actor)
    if not stats.total:
        st.info("No integrations yet. Use **Add CRM integration** above to connect a Chatwoot account or any REST CRM.")
        return
    check_all_section(stats.stale)
    query = list_query()
    page = service.page(actor, query)
    if not page.views:
        st.info("No integration matches this search. Clear the search or choose other filters.")
        return
    integrations_table(page.views)
    pager(page)
    export_buttons(query)
    actions(page.views)


st.title("Integrations")
connect.show_outcome(ctx, actor)
catalog_section()
st.divider()
integrations_section()

show_dialogs()
