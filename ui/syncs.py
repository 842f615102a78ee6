"""The contact syncs section of an integration's page (ui/integration_detail.py), for a CRM whose contacts
the console can sync and for a Chatwoot integration: its syncs with their last run, Sync now, Dry run,
a form to create one with another integration of the same owner, and delete.

Only SyncService and IntegrationService calls; names and messages come from people and remote services,
so Markdown gets them through esc (tables show them as plain text).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.audit import Actor
from core.errors import ConsoleError
from core.integrations.service import IntegrationView
from core.sync.service import CRM_OBJECTS, DIRECTIONS, SyncView, sync_switch_on
from core.words import count
from ui import confirm
from ui.text import esc

CHATWOOT = "CHATWOOT"


def applies(ctx, view: IntegrationView) -> bool:
    return view.provider == CHATWOOT or view.provider in ctx.syncs.contact_providers()


def _counts(sync: SyncView) -> str:
    run = sync.last_run
    if run is None:
        return "not run yet"
    parts = []
    for side, label in (("chatwoot", "Chatwoot"), ("crm", "CRM")):
        counts = run.report.get(side) or {}
        parts.append(
            f"{label}: {counts.get('created', 0)} created, {counts.get('updated', 0)} updated, "
            f"{counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed"
        )
    return "; ".join(parts)


def _row(view: IntegrationView, sync: SyncView) -> dict:
    chatwoot_here = view.provider == CHATWOOT
    run = sync.last_run
    return {
        "Sync": sync.id,
        "With": sync.crm_name if chatwoot_here else sync.chatwoot_name,
        "Direction": sync.direction_label,
        "CRM records": sync.crm_object_label,
        "Schedule": f"next {sync.next_run_at:%Y-%m-%d %H:%M} UTC" if sync.next_run_at else "manual only",
        "Last run": run.started_at if run else None,
        "Status": run.status if run else "",
        "Counts": _counts(sync),
    }


def _with_leads(ctx, view: IntegrationView, partners: list[IntegrationView]) -> list[str]:
    """The names of the CRMs here whose syncs may write leads (this CRM, or on a Chatwoot page its partners)."""
    crms = partners if view.provider == CHATWOOT else [view]
    return sorted({i.provider_name for i in crms if "leads" in ctx.syncs.crm_objects(i.provider)})


def _create_form(ctx, actor: Actor, view: IntegrationView) -> None:
    partners = ctx.syncs.partners(actor, view)
    other = "CRM" if view.provider == CHATWOOT else "Chatwoot integration"
    if not partners:
        st.caption(f"To create a sync, add a {other} for {esc(view.owner)} first.")
        return
    with st.form("sync-create", clear_on_submit=False):
        st.markdown("**New contact sync**")
        names = {i.id: f"{i.name} ({i.provider_name}, #{i.id})" for i in partners}
        chosen = st.selectbox(
            f"Sync with ({other})", list(names), format_func=lambda i: names[i], key="sync-create-partner"
        )
        direction = st.selectbox(
            "Direction", list(DIRECTIONS), format_func=lambda d: DIRECTIONS[d], key="sync-create-direction"
        )
        crm_object = "contacts"
        if leads := _with_leads(ctx, view, partners):
            crm_object = st.selectbox(
                "CRM records",
                list(CRM_OBJECTS),
                format_func=lambda o: CRM_OBJECTS[o],
                key="sync-create-object",
                help=(
                    "What people who start a chat become in the CRM, and what the sync reads there: contacts, "
                    f"or leads. Leads are offered by {', '.join(leads)} only; other CRMs always sync contacts. "
                    "In Pipedrive a lead needs a person: the sync creates the person and a lead for them."
                ),
            )
        if st.form_submit_button("Create sync", icon=":material/sync:"):
            crm_id, chatwoot_id = (chosen, view.id) if view.provider == CHATWOOT else (view.id, chosen)
            try:
                made = ctx.syncs.create(actor, crm_id, chatwoot_id, direction, crm_object)
            except ConsoleError as exc:
                st.error(esc(exc))
            else:
                st.toast(f"Sync {made.id} created: {esc(made.crm_name)} ↔ {esc(made.chatwoot_name)}.")
                st.rerun()


def _actions(ctx, actor: Actor, view: IntegrationView, syncs: list[SyncView]) -> None:
    labels = {
        s.id: f"Sync {s.id}: {_row(view, s)['With']} ({s.direction_label}, {s.crm_object_label.lower()})" for s in syncs
    }
    chosen = st.selectbox("Sync", list(labels), format_func=lambda i: labels[i], key="sync-chosen")
    cols = st.columns(3)
    if cols[0].button("Sync now", key="sync-now", icon=":material/sync:", width="stretch"):
        try:
            ctx.syncs.request_run(actor, chosen)
        except ConsoleError as exc:
            st.toast(esc(exc), icon=":material/error:")
        else:
            queued = ctx.syncs.enqueue is not None
            text = "queued: its report appears here when it is done" if queued else "run: see its report"
            st.toast(f"Sync {chosen} {text}.", icon=":material/check_circle:")
    if cols[1].button("Dry run", key="sync-dry", icon=":material/preview:", width="stretch"):
        try:
            report = ctx.syncs.dry_run(actor, chosen)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            if report.preview:
                n = len(report.preview)
                st.caption(f"The first {count(n, 'change')} a run would make; nothing was written.")
                st.dataframe(pd.DataFrame(report.preview), hide_index=True, width="stretch")
            else:
                st.info("A run would change nothing now.")
    if confirm.destructive(
        "Delete sync",
        "sync-delete",
        f"Delete sync {chosen}? No contact on either side is touched; its history goes.",
        where=cols[2],
    ):
        try:
            ctx.syncs.delete(actor, chosen)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            st.toast(f"Sync {chosen} deleted; no contact on either side was touched.")
            st.rerun()


def section(ctx, actor: Actor, view: IntegrationView) -> None:
    """The section, for an integration it applies to (applies(ctx, view))."""
    st.subheader("Contact sync")
    switched_off = view.provider == CHATWOOT and not sync_switch_on(view.configuration)
    if switched_off:
        st.info(
            "Contact sync is switched off for this Chatwoot integration (Sync contacts, in its settings): "
            "no sync into it runs, and none can be created. **Edit** turns it on."
        )
    syncs = ctx.syncs.list(actor, view.id)
    if syncs:
        st.dataframe(
            pd.DataFrame([_row(view, s) for s in syncs]),
            hide_index=True,
            width="stretch",
            column_config={
                "Last run": st.column_config.DatetimeColumn("Last run (UTC)", format="YYYY-MM-DD HH:mm"),
                "Counts": st.column_config.TextColumn(width="large", help="Of the last run, by the side written to."),
            },
        )
        _actions(ctx, actor, view, syncs)
    else:
        st.caption("No contact sync for this integration yet.")
    if not switched_off:
        _create_form(ctx, actor, view)
