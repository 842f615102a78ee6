"""The Integrations list: its table (status with colour and icon, "Never" for a never checked one), the rows
a person selects, and what they can do with them: one row's actions (open, test, edit, activate or deactivate,
duplicate, delete) or a selection's (test, activate, deactivate, give to someone else, delete).

Every action goes through the service layer (ui/integration_dialogs for the confirmations); its outcome is one
message above the table (RESULT_KEY), shown until the next action, filter or page.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.audit import Actor
from core.integrations.bulk import BulkResult
from core.integrations.health import Health
from core.integrations.service import IntegrationService, IntegrationView
from ui import check_all, reads, state
from ui.integration_dialogs import (
    RESULT_KEY,
    open_bulk_delete,
    open_delete,
    open_dialog,
    open_transfer,
    report_bulk,
    show_result,
)
from ui.tables import rows_table
from ui.text import esc

ROWS_KEY = "list_row_ids"  # the ids of the rows the table showed, in order: a selection's indices refer to them
TABLE_NONCE = "list_table_nonce"  # a new table key clears the selection (after an action, when the rows change)
LAST_TEST = "last_test"
# Icons are text symbols (every font has them, unlike colour emoji), each a shape of its own so that colour
# is never the only sign; the table shows each as a tag coloured by its icon (COLOURS).
STATUS = {"connected": ("✓", "Connected"), "error": ("✕", "Error"), "unknown": ("○", "Never tested")}
HEALTH_ICONS = {
    Health.CONNECTED: "✓",
    Health.DEGRADED: "◐",
    Health.FAILING: "✕",
    Health.NEEDS_RECONNECT: "⟳",
    Health.PAUSED: "‖",
    Health.UNKNOWN: "○",
}
COLOURS = {"✓": "#1e7e34", "✕": "#c62828", "◐": "#b26a00", "⟳": "#7b1fa2", "‖": "#5f6368", "○": "#5f6368"}


def tag_column(label: str, values: list[str], help: str | None = None):
    """A read-only column of one coloured tag per cell (a cell holds [its text]): colour by the text's icon.
    A pandas Styler would colour the text instead, but marshalling one costs more than the rest of the page."""
    return st.column_config.MultiselectColumn(
        label, help=help, options=values, color=[COLOURS.get(value[:1], "#5f6368") for value in values]
    )


STATUS_TAGS = [f"{icon} {words}{stale}" for icon, words in STATUS.values() for stale in ("", " · stale")]
HEALTH_TAGS = [f"{HEALTH_ICONS[health]} {health.label}" for health in Health]


PAGE = "app_pages/integration.py"


def status_text(view: IntegrationView) -> str:
    icon, words = STATUS.get(view.status, ("○", view.status))
    return f"{icon} {words}{' · stale' if view.stale else ''}"


def health_text(view: IntegrationView) -> str:
    health = Health.parse(view.health)
    return f"{HEALTH_ICONS[health]} {health.label}"


def checked_text(view: IntegrationView) -> str:
    return f"{view.last_checked_at:%Y-%m-%d %H:%M}" if view.last_checked_at else "Never"


def clear_selection() -> None:
    st.session_state[TABLE_NONCE] = st.session_state.get(TABLE_NONCE, 0) + 1


def report(kind: str, text: str) -> None:
    """The outcome of an action, shown above the table on the next run (plain text: names are people's)."""
    st.session_state[RESULT_KEY] = (kind, text)
    st.session_state.pop(LAST_TEST, None)
    clear_selection()
    reads.forget()


def show_report() -> None:
    """The last action's one message: a selection's outcome, or the last test (a row's, or a saved form's)."""
    if pending := st.session_state.get(RESULT_KEY):
        kind, text = pending
        {"success": st.success, "warning": st.warning, "error": st.error}[kind](esc(text))
    elif last := st.session_state.get(LAST_TEST):
        show_result(last[1])


def forget_report() -> None:
    """The filters changed: the last message described other rows."""
    st.session_state.pop(RESULT_KEY, None)
    st.session_state.pop(LAST_TEST, None)


def table(views: list[IntegrationView], is_admin: bool) -> list[IntegrationView]:
    """The table with a checkbox per row; returns the selected integrations (of the rows the person saw)."""
    ids = [v.id for v in views]
    shown_before = st.session_state.get(ROWS_KEY)
    if shown_before is not None and shown_before != ids:
        clear_selection()  # other rows now: a kept selection would point at different integrations
    frame = rows_table(
        [
            {
                "Name": v.name,
                "Provider": v.provider_name,
                "Status": [status_text(v)],
                "Health": [health_text(v)],
                "Last checked": checked_text(v),
                "Active": v.is_active,
                "Message": v.status_message or "",
                **({"Owner": v.owner} if is_admin else {}),
                "Page": f"integration?id={v.id}",  # its own page (app_pages/integration.py)
            }
            for v in views
        ]
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=f"list_table_{st.session_state.get(TABLE_NONCE, 0)}",
        on_select="rerun",
        selection_mode="multi-row",
        column_config={
            "Name": st.column_config.TextColumn("Name", help="Select rows with the boxes on the left to act on them"),
            "Status": tag_column("Status", STATUS_TAGS, help="What the last test found"),
            "Health": tag_column("Health", HEALTH_TAGS),
            "Last checked": st.column_config.TextColumn("Last checked (UTC)"),
            "Active": st.column_config.CheckboxColumn("Active", help="Checked on a schedule"),
            "Message": st.column_config.TextColumn(
                "Message", width="medium", help="What the last test reported; select the row to read all of it"
            ),
            "Page": st.column_config.LinkColumn("Page", display_text="Open", help="The integration's own page"),
        },
    )
    st.session_state[ROWS_KEY] = ids
    rows = event.selection.rows if event is not None else []  # type: ignore[union-attr]
    by_id = {v.id: v for v in views}
    return [by_id[ids[i]] for i in rows if 0 <= i < len(ids)]


# ----- actions ---------------------------------------------------------------------------------------


def _run(act: Callable[[], BulkResult], keep_selection: bool = False) -> None:
    st.session_state.pop(LAST_TEST, None)
    report_bulk(act(), keep_selection)
    st.rerun()


def row_actions(service: IntegrationService, actor: Actor, view: IntegrationView) -> None:
    """One selected row: what it is, its full last message, and everything one can do with it."""
    with st.container(border=True):
        st.markdown(f"**{esc(view.name)}** · {esc(view.provider_name)} · #{view.id} · {status_text(view)}")
        checked = "never tested" if view.last_checked_at is None else f"last checked {checked_text(view)} UTC"
        st.caption(f"Owner {esc(view.owner)} · {checked} · {'active' if view.is_active else 'inactive'}")
        if view.status_message:
            st.text(view.status_message)  # the full message, as plain text
        cols = st.columns(6)
        cols[0].page_link(PAGE, label="Open", icon=":material/open_in_new:", query_params={"id": str(view.id)})
        if cols[1].button("Test", key="row-test", icon=":material/network_check:", width="stretch"):
            with st.spinner(f"Testing {esc(view.name)}…"):
                result = service.test(actor, view.id)
            reads.forget()
            st.session_state.pop(RESULT_KEY, None)
            st.session_state[LAST_TEST] = (view.id, result)
            st.rerun()
        if cols[2].button("Edit", key="row-edit", icon=":material/edit:", width="stretch"):
            open_dialog("edit", view.id)
            st.rerun()
        toggle = "Deactivate" if view.is_active else "Activate"
        icon = ":material/pause_circle:" if view.is_active else ":material/play_circle:"
        if cols[3].button(toggle, key="row-toggle", icon=icon, width="stretch"):
            _run(lambda: service.bulk_set_active(actor, [view.id], not view.is_active), keep_selection=True)
        if cols[4].button("Duplicate", key="row-duplicate", icon=":material/content_copy:", width="stretch"):
            ok, copy = state.attempt(lambda: service.duplicate(actor, view.id))
            if ok:
                report("success", f"Added {copy.name}, a copy of {view.name}. Test it before relying on it.")
                st.rerun()
        if cols[5].button("Delete", key="row-delete", icon=":material/delete:", width="stretch"):
            open_delete(view.id)
            st.rerun()
        if actor.is_admin and st.button("Give to someone else", key="row-transfer", icon=":material/person:"):
            open_transfer([view])
            st.rerun()


def bulk_actions(service: IntegrationService, actor: Actor, chosen: list[IntegrationView]) -> None:
    """Several selected rows: one button per action, each acting on every selected integration."""
    with st.container(border=True):
        names = ", ".join(v.name for v in chosen[:5]) + (f" and {len(chosen) - 5} more" if len(chosen) > 5 else "")
        st.markdown(f"**{len(chosen)} selected:** {esc(names)}")
        ids = [v.id for v in chosen]
        cols = st.columns(5 if actor.is_admin else 4)
        active = [v.id for v in chosen if v.is_active]
        if cols[0].button(
            f"Test {len(active)}",
            key="bulk-test",
            icon=":material/network_check:",
            width="stretch",
            disabled=not active,
            help="Re-tests the selected active integrations on the task engine; Health check above shows progress."
            + ("" if len(active) == len(chosen) else " Inactive ones are not tested: activate them first."),
        ):
            refused = check_all.start_selected(state.context(), actor, active)
            if refused:
                report("error", refused)
            st.rerun()
        if cols[1].button("Activate", key="bulk-activate", icon=":material/play_circle:", width="stretch"):
            _run(lambda: service.bulk_set_active(actor, ids, True))
        if cols[2].button("Deactivate", key="bulk-deactivate", icon=":material/pause_circle:", width="stretch"):
            _run(lambda: service.bulk_set_active(actor, ids, False))
        if cols[3].button(f"Delete {len(chosen)}", key="bulk-delete", icon=":material/delete:", width="stretch"):
            open_bulk_delete(chosen)
            st.rerun()
        if actor.is_admin and cols[4].button(
            "Give to…", key="bulk-transfer", icon=":material/person:", width="stretch"
        ):
            open_transfer(chosen)
            st.rerun()


def selection_actions(service: IntegrationService, actor: Actor, chosen: list[IntegrationView]) -> None:
    if not chosen:
        st.caption(
            "Tick rows to test, edit, duplicate, activate, deactivate or delete them; **Open** shows one's page."
        )
    elif len(chosen) == 1:
        row_actions(service, actor, chosen[0])
    else:
        bulk_actions(service, actor, chosen)
