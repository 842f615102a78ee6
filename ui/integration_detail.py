"""An integration's own page (app_pages/integration.py, /integration?id=N): its health with what it means and
what to do, uptime and latency, the last 30 days, the last checks, its activity, its configuration (secrets
masked), the actions: test now, pause or resume, edit, delete; and, for a CRM with contacts or a Chatwoot
integration, its contact syncs (ui/syncs.py).

Every name, message and value here comes from people or customers' servers: Markdown gets it through esc,
tables and st.json show it as plain text.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.audit import Actor
from core.errors import ConsoleError, NotFoundError
from core.integrations.classify import CLASS_TEXT, CheckClass
from core.integrations.detail import CHART_DAYS, IntegrationDetail
from core.integrations.health import Health
from core.integrations.history import CheckView
from core.integrations.service import IntegrationService
from core.words import count
from providers import CATALOG
from ui import chatwoot_bot, connect, reads, state, syncs
from ui import health as health_ui
from ui.integration_dialogs import open_delete, open_dialog, show_dialogs
from ui.tables import rows_table
from ui.text import details_markdown, esc

LIST_PAGE = "app_pages/integrations.py"
FOUND = "detail-found"  # (integration id, the details of its last Test now on this page)
COLORS = {"Passed": "#2e9e5b", "Failed": "#d64545"}


def parse_id(raw: object) -> int | None:
    text = str(raw or "").strip().lstrip("#")
    return int(text) if text.isdigit() and len(text) < 19 else None


def not_found(raw: object) -> None:
    shown = str(raw or "").strip()[:40] or "(none)"
    st.title("Integration")
    st.error(
        f"No integration {esc(shown)} here: it was deleted or belongs to someone else.",
        icon=":material/search_off:",
    )
    st.page_link(LIST_PAGE, label="Back to Integrations", icon=":material/arrow_back:")


def last_check_class(check: CheckView) -> tuple[str, str, str] | None:
    """(class name, sentence, next step) of a stored check's class, or None for a class this version lacks."""
    try:
        check_class = CheckClass(check.check_class)
    except ValueError:
        return None
    sentence, next_step = CLASS_TEXT[check_class]
    return check_class.value.replace("_", " ").capitalize(), sentence, next_step


def percent(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.2f}%" if value < 1 else "100%"


def milliseconds(value: int | None) -> str:
    return "–" if value is None else f"{value:,} ms"


# ----- sections ------------------------------------------------------------------------------------


def header(detail: IntegrationDetail) -> None:
    view = detail.view
    st.page_link(LIST_PAGE, label="All integrations", icon=":material/arrow_back:")
    st.title(esc(view.name))
    active = "active" if view.is_active else "not checked on a schedule"
    st.caption(f"{esc(view.provider_name)} · {esc(view.type)} · owner {esc(view.owner)} · #{view.id} · {active}")


def health_section(detail: IntegrationDetail) -> None:
    with st.container(border=True):
        health_ui.badge(detail.health)
        st.markdown(f"**{esc(detail.sentence)}** {esc(detail.next_step)}")
        facts = []
        if detail.health_changed_at:
            facts.append(f"since {detail.health_changed_at:%Y-%m-%d %H:%M} UTC")
        if detail.failures_in_row:
            facts.append(f"{count(detail.failures_in_row, 'failed check')} in a row")
        if detail.view.last_checked_at:
            facts.append(f"last checked {detail.view.last_checked_at:%Y-%m-%d %H:%M} UTC")
        if detail.next_check_at and detail.view.is_active:
            facts.append(f"next check due {detail.next_check_at:%Y-%m-%d %H:%M} UTC")
        if facts:
            st.caption(esc(" · ".join(facts)))
        if detail.view.status_message and detail.health is not Health.CONNECTED:
            st.caption(f"Last message: {esc(detail.view.status_message)}")
        if detail.checks and not detail.checks[0].success and (what := last_check_class(detail.checks[0])):
            st.markdown(f"**Last check: {esc(what[0])}.** {esc(what[1])} {esc(what[2])}")


def actions(service: IntegrationService, actor: Actor, detail: IntegrationDetail) -> None:
    view = detail.view
    paused = detail.health is Health.PAUSED or not view.is_active
    cols = st.columns(4)
    if cols[0].button("Test now", key="detail-test", icon=":material/network_check:", width="stretch"):
        with st.spinner(f"Testing {esc(view.name)}…"):
            result = service.test(actor, view.id)
        reads.forget()
        if result.success:
            state.flash(f"{view.name}: {result.message}", ":material/check_circle:")
        else:
            state.flash(f"{view.name}: {result.message}", ":material/error:")
        st.session_state[FOUND] = (view.id, dict(result.details or {}))
        st.rerun()
    label, icon = ("Resume", ":material/play_arrow:") if paused else ("Pause", ":material/pause:")
    if cols[1].button(label, key="detail-pause", icon=icon, width="stretch"):
        try:
            (service.resume if paused else service.pause)(actor, view.id)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            reads.forget()
            if paused:
                state.flash(f"{view.name} is resumed: it is checked again from now.", ":material/play_arrow:")
            else:
                state.flash(f"{view.name} is paused: no scheduled checks until you resume it.", ":material/pause:")
            st.rerun()
    if cols[2].button("Edit", key="detail-edit", icon=":material/edit:", width="stretch"):
        open_dialog("edit", view.id)
        st.rerun()
    if cols[3].button("Delete", key="detail-delete", icon=":material/delete:", width="stretch"):
        open_delete(view.id, then=LIST_PAGE)
        st.rerun()


def test_found(detail: IntegrationDetail) -> None:
    """What the last "Test now" of this integration found (the account, the scopes, ...), as label: value lines."""
    found = st.session_state.get(FOUND)
    if not found or found[0] != detail.view.id:
        return
    lines = details_markdown(found[1])
    if lines:
        with st.expander("What the test found", icon=":material/fact_check:"):
            st.markdown(lines)


def metrics(detail: IntegrationDetail) -> None:
    cols = st.columns(4)
    cols[0].metric("Uptime, 7 days", percent(detail.uptime_7), help="Successful checks out of all checks.")
    cols[1].metric("Uptime, 30 days", percent(detail.uptime_30), help="Successful checks out of all checks.")
    latency_help = "Of the successful checks in the last 30 days (a failed check's time is mostly its timeout)."
    cols[2].metric("Latency p50", milliseconds(detail.p50_ms), help=latency_help)
    cols[3].metric("Latency p95", milliseconds(detail.p95_ms), help=latency_help)


def chart(detail: IntegrationDetail) -> None:
    st.subheader(f"Checks per day, last {CHART_DAYS} days")
    if not any(p.checks for p in detail.daily):
        st.info("No checks in the last 30 days. **Test now** checks it at once.")
        return
    frame = pd.DataFrame(
        {
            "Day": pd.to_datetime([p.day for p in detail.daily]),
            "Passed": [p.checks - p.failures for p in detail.daily],
            "Failed": [p.failures for p in detail.daily],
        }
    )
    # A plain Vega-Lite spec, as on Overview and Statistics (st.bar_chart would build it through Altair).
    st.vega_lite_chart(
        frame,
        {
            "transform": [{"fold": list(COLORS), "as": ["Result", "Checks"]}],
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": {"field": "Day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": None},
                "y": {"field": "Checks", "type": "quantitative", "stack": True, "title": "Checks (UTC days)"},
                "color": {
                    "field": "Result",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                    "legend": {"orient": "bottom"},
                },
            },
        },
        width="stretch",
    )


def checks_table(detail: IntegrationDetail) -> None:
    st.subheader("Last checks")
    if not detail.checks:
        st.caption("No check is stored yet.")
        return
    st.dataframe(
        rows_table(
            [
                {
                    "When": c.at,
                    "Result": "Passed" if c.success else "Failed",
                    "Class": c.check_class,
                    "Latency (ms)": c.latency_ms,
                    "Status or code": c.status_or_code,
                    "Message": c.message,
                    "Trigger": c.trigger,
                }
                for c in detail.checks
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "When": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "Message": st.column_config.TextColumn(width="large"),
        },
    )
    st.caption(
        f"The newest {len(detail.checks)}. Each check is kept {detail.retention_days} days, then counted in a "
        "daily summary (uptime beyond that comes from it)."
    )


def activity(detail: IntegrationDetail) -> None:
    st.subheader("Activity")
    if not detail.activity:
        st.caption("Nothing recorded yet.")
        return
    st.dataframe(
        rows_table(
            [
                {"When": a.at, "Who": a.actor, "What": a.label, "Outcome": a.outcome, "Details": a.summary}
                for a in detail.activity
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "When": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "Details": st.column_config.TextColumn(
                width="large", help="An edit shows old → new for each field; a secret says only that it changed."
            ),
        },
    )


def configuration(detail: IntegrationDetail) -> None:
    st.subheader("Configuration")
    st.caption("Secrets are masked; **Edit** changes them.")
    st.json(detail.view.configuration, expanded=True)


def render(ctx, actor: Actor, raw_id: object) -> None:
    """The whole page for the id in the address (?id=N)."""
    integration_id = parse_id(raw_id)
    if integration_id is None:
        not_found(raw_id)
        return
    service = ctx.integrations
    try:
        detail = reads.detail(service, actor, integration_id)
    except NotFoundError:
        not_found(integration_id)
        return
    header(detail)
    health_section(detail)
    if detail.health is Health.NEEDS_RECONNECT:
        connect.reconnect_offer(ctx, actor, CATALOG.get(detail.view.provider), detail.view.id)
    actions(service, actor, detail)
    test_found(detail)
    metrics(detail)
    chart(detail)
    checks_table(detail)
    chatwoot_bot.render(ctx, actor, detail.view)
    if syncs.applies(ctx, detail.view):
        syncs.section(ctx, actor, detail.view)
    activity(detail)
    configuration(detail)
    show_dialogs()
