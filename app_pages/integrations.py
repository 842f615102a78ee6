"""Integrations: the catalog of types with tier gates, the user's integrations, add/edit/test/toggle/delete."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.catalog import INTEGRATION_TYPES
from core.errors import ConflictError, ConsoleError, NotFoundError, ValidationError
from core.integrations import exports
from core.integrations.checks import CheckAllScope
from core.integrations.service import IntegrationView, ListQuery
from core.results import TestResult
from core.tiers import FEATURE_MIN_TIER, UNLIMITED, Tier
from providers import CATALOG
from ui import check_all, state
from ui.forms import controlling_fields, render_fields
from ui.text import esc

ctx, actor = state.context(), state.actor()
service = ctx.integrations
tier = Tier.parse(actor.tier)
DIALOG = "integration_dialog"
DELETE = "delete_dialog"  # {"view": IntegrationView captured when it opened} or {"missing": why}
STATUS_LABELS = {"connected": "Connected", "error": "Error", "unknown": "Not tested"}
ADD_LABELS = {"CRM": "Add CRM integration", "DATABASE": "Add database", "API": "Add API", "WEBHOOK": "Add webhook"}
# Cards that open a page of their own: type key -> (page, link label, icon).
TYPE_PAGES = {
    "HELPDESK": ("app_pages/helpdesk.py", "Open Helpdesk", ":material/support_agent:"),
    "CHAT_WIDGET": ("app_pages/widget.py", "Open Chat widget", ":material/chat:"),
}


# ----- dialog state ------------------------------------------------------------------------


def open_dialog(kind: str, integration_id: int | None = None, category: str = "CRM") -> None:
    """Open the add or edit dialog. An edit captures the integration now (its values and version): every
    rerun of the dialog shows and saves against what was opened, so a save after someone else's is refused
    instead of silently undoing their change. A new prefix gives the widgets fresh keys and defaults."""
    nonce = st.session_state.get("dialog_nonce", 0) + 1
    st.session_state["dialog_nonce"] = nonce
    st.session_state[DIALOG] = {"kind": kind, "id": integration_id, "category": category, "prefix": f"dlg{nonce}"}
    if integration_id is not None:
        try:
            st.session_state[DIALOG]["view"] = service.get(actor, integration_id)
        except NotFoundError as exc:
            st.session_state[DIALOG]["missing"] = str(exc)


def close_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def show_result(result: TestResult) -> None:
    if result.success:
        st.success(esc(result.message), icon=":material/check_circle:")
        if result.details.get("limited"):
            st.warning("This token connects, but helpdesk features need an administrator's token.")
        if result.details:
            with st.expander("What the test found"):
                st.json({k: v for k, v in result.details.items() if k != "field_errors"})
    else:
        st.error(esc(result.message), icon=":material/error:")


# ----- add / edit dialog -------------------------------------------------------------------


def choose_provider(existing):
    if existing is not None:
        provider = CATALOG.get(existing.provider)
        st.caption(f"Provider: **{provider.name}**")
        return provider
    choices = CATALOG.in_category(st.session_state[DIALOG].get("category", "CRM"))
    if len(choices) == 1:
        return choices[0]
    return st.selectbox(
        "Provider",
        choices,
        format_func=lambda p: p.name if p.available else f"{p.name} (coming soon)",
        key=f"{st.session_state[DIALOG]['prefix']}:provider",
    )


def save(provider, existing, name: str, config: dict):
    if existing is None:
        return service.create(actor, name, provider.key, config)
    return service.update(actor, existing.id, existing.version, name=name, configuration=config)


def integration_form(provider, existing, prefix: str) -> None:
    stored = existing.configuration if existing else {}
    errors = st.session_state.get(f"{prefix}:errors", {})
    name = st.text_input(
        "Integration name *",
        value=existing.name if existing else "",
        placeholder=f"e.g. Acme — {provider.name}",
        key=f"{prefix}:{provider.key}:integration-name",  # distinct from a provider field called "name"
    )
    if errors.get("name"):
        st.markdown(f":red[{esc(errors['name'])}]")
    controlling = controlling_fields(provider.fields)
    key_prefix = f"{prefix}:{provider.key}"
    controls = render_fields([f for f in provider.fields if f.name in controlling], stored, key_prefix, errors, {})
    with st.form(f"{key_prefix}:form", border=False):
        rest = render_fields(
            [f for f in provider.fields if f.name not in controlling], stored, key_prefix, errors, controls
        )
        left, right = st.columns(2)
        tested = left.form_submit_button("Test connection", width="stretch")
        saved = right.form_submit_button("Save integration", type="primary", width="stretch")
    config = {**rest, **controls}
    if tested:
        with st.spinner(f"Testing the connection to {provider.name}…"):
            result = service.test_configuration(actor, provider.key, config, existing.id if existing else None)
        st.session_state[f"{prefix}:errors"] = result.details.get("field_errors", {})
        st.session_state[f"{prefix}:result"] = result
        st.rerun()
    if saved:
        try:
            view = save(provider, existing, name, config)
        except ValidationError as exc:
            st.session_state[f"{prefix}:errors"] = exc.errors
            st.rerun()
        except ConflictError as exc:
            st.session_state[f"{prefix}:conflict"] = str(exc)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            close_dialog()
            state.flash(f"Saved {view.name}.")
            if st.session_state.get(f"{prefix}:result"):
                # It was tested in the form: record the status of what was actually stored.
                with st.spinner("Checking the saved connection…"):
                    st.session_state["last_test"] = (view.id, service.test(actor, view.id))
            st.rerun()
    if refused := st.session_state.get(f"{prefix}:conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        if st.button("Reload their version", key=f"{prefix}:reload", icon=":material/refresh:"):
            # Knowingly discards this form's edits: the dialog reopens on the record as stored now.
            open_dialog("edit", existing.id)
            st.rerun()
    if errors:
        st.error("Some fields need attention; see the messages above.")
    if result := st.session_state.get(f"{prefix}:result"):
        show_result(result)
    if provider.guide:
        with st.expander(provider.guide[0]):
            st.code(provider.guide[1], language="python")


def dialog_body() -> None:
    current = st.session_state.get(DIALOG)
    if not current:
        return
    state.require_fresh(actor)  # a dialog's reruns skip Home.py's check; same person, role and tier after it
    existing = None
    if current["id"] is not None:
        if "view" not in current and "missing" not in current:  # opened without open_dialog: capture now
            try:
                current["view"] = service.get(actor, current["id"])
            except NotFoundError as exc:
                current["missing"] = str(exc)
        if "missing" in current:
            st.error(esc(current["missing"]))
            return
        existing = current["view"]  # as it was when the dialog opened, not as it is now
    provider = choose_provider(existing)
    st.caption(provider.description)
    if not provider.available:
        st.info(
            f"{provider.name} is coming soon: its connection test is not built yet, so it cannot be "
            "connected today. Chatwoot and Custom CRM work now."
        )
        return
    integration_form(provider, existing, current["prefix"])


add_dialog = st.dialog("Add an integration", width="large", on_dismiss=close_dialog)(dialog_body)
edit_dialog = st.dialog("Edit integration", width="large", on_dismiss=close_dialog)(dialog_body)


def open_delete(integration_id: int) -> None:
    """Open the delete dialog on the integration as it is now (id, name, version), as open_dialog does for
    an edit: the deletion is sent with that version, so one after someone else's save is refused, naming them.
    """
    try:
        st.session_state[DELETE] = {"view": service.get(actor, integration_id)}
    except NotFoundError as exc:
        st.session_state[DELETE] = {"missing": str(exc)}


def close_delete() -> None:
    st.session_state.pop(DELETE, None)


@st.dialog("Delete integration", on_dismiss=close_delete)
def delete_dialog() -> None:
    pending = st.session_state.get(DELETE)
    if not pending:
        return
    state.require_fresh(actor)  # a dialog's reruns skip Home.py's check; same person, role and tier after it
    if "missing" in pending:
        st.error(esc(pending["missing"]))
        return
    view = pending["view"]  # as it was when the dialog opened, not the list row of this rerun
    if refused := pending.get("conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        left, right = st.columns(2)
        if left.button("Look again", key="delete:reload", icon=":material/refresh:", width="stretch"):
            open_delete(view.id)  # reopens on the record as stored now, with its name and version
            st.rerun()
        if right.button("Cancel", key="delete:cancel", width="stretch"):
            close_delete()
            st.rerun()
        return
    st.write(
        f"Delete **{esc(view.name)}** ({view.provider_name})? Its stored credentials are erased. This cannot be undone."
    )
    left, right = st.columns(2)
    if left.button("Delete permanently", type="primary", width="stretch"):
        try:
            service.delete(actor, view.id, view.version)
        except ConflictError as exc:
            pending["conflict"] = str(exc)
            st.rerun()
        except ConsoleError as exc:
            st.error(esc(exc))
            return
        close_delete()
        state.flash(f"Deleted {view.name}.", ":material/delete:")
        st.rerun()
    if right.button("Cancel", width="stretch"):
        close_delete()
        st.rerun()


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
                "Status": status_label(v),
                "Last checked": v.last_checked_at,
                "Active": v.is_active,
                "Message": v.status_message or "",
                **({"Owner": v.owner} if actor.is_admin else {}),
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
        st.rerun()
    if cols[1].button("Edit", key="act-edit", width="stretch"):
        open_dialog("edit", view.id)
        st.rerun()
    toggle_label = "Deactivate" if view.is_active else "Activate"
    if cols[2].button(toggle_label, key="act-toggle", width="stretch"):
        service.set_active(actor, view.id, not view.is_active)
        state.flash(f"{view.name} is now {'active' if not view.is_active else 'inactive'}.")
        st.rerun()
    if cols[3].button("Delete", key="act-delete", width="stretch"):
        open_delete(view.id)
        st.rerun()
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
        (st.warning if progress.failed or progress.cancelled else st.success)(progress.line())
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
                f"{stale} active integration(s) are stale: not checked for {hours:g} hours. "
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


def list_query() -> ListQuery:
    """Search, filters and page: the list is cut in the database, so any number of integrations stays quick."""
    search_col, status_col, provider_col = st.columns([3, 1, 1])
    search = search_col.text_input(
        "Search",
        key="list_search",
        placeholder="Name, owner or #id" if actor.is_admin else "Name or #id",
        label_visibility="collapsed",
    )
    status = status_col.selectbox("Status", list(LIST_STATUSES), key="list_status", label_visibility="collapsed")
    providers = {"All providers": None, **{p.name: p.key for p in CATALOG}}
    provider = provider_col.selectbox("Provider", list(providers), key="list_provider", label_visibility="collapsed")
    query = ListQuery(search, LIST_STATUSES[status], providers[provider], limit=PAGE_SIZE)
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
catalog_section()
st.divider()
integrations_section()

if current := st.session_state.get(DIALOG):
    (add_dialog if current["kind"] == "add" else edit_dialog)()
elif DELETE in st.session_state:
    delete_dialog()
