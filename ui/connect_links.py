"""Connect links on the staff pages: create one (a dialog), the list with state and provider filters,
revoke and send again, the address shown once to copy, and the owner's notice when a customer completed
one. core/connect/links.py does the work; every name and message here is shown as plain text.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_context import AppContext
from core.audit import Actor
from core.connect.links import DEFAULT_DAYS, MAX_DAYS, MAX_NOTE, STATES, IssuedLink, LinkView
from core.errors import ConsoleError, ValidationError
from providers import CATALOG
from ui import confirm, state
from ui.text import esc

ISSUED = "links:issued"  # (what it is for, the address): shown once, until dismissed
CREATE = "links:create"
CHOSEN = "links:chosen"  # the link the actions below the list are for
STATE_WORDS = {
    "created": "Created (not opened yet)",
    "opened": "Opened",
    "completed": "Completed",
    "expired": "Expired",
    "revoked": "Revoked",
}


def _problem(exc: ConsoleError) -> str:
    return " ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)


def remember_issued(what: str, issued: IssuedLink) -> None:
    st.session_state[ISSUED] = (what, issued.url)


def show_issued() -> None:
    """The address a link was just given: shown once (only its hash is stored)."""
    pending = st.session_state.get(ISSUED)
    if not pending:
        return
    what, url = pending
    with st.container(border=True):
        st.success(esc(what), icon=":material/link:")
        st.code(url, language=None)
        st.caption(
            "Copy it now and send it to your customer: it is shown only this once. It works once; "
            "“Send again” gives a new address and the old one stops working."
        )
        if st.button("Done, I copied it", key="links:issued:dismiss"):
            st.session_state.pop(ISSUED, None)
            st.rerun()


def open_create() -> None:
    st.session_state[CREATE] = {}  # the dialog's state: what its form held first, and whether it asks to discard


def close_create() -> None:
    st.session_state.pop(CREATE, None)


# Not dismissible: Escape or a click beside it would throw away what was typed; Cancel asks first.
@st.dialog("New connect link", width="large", dismissible=False)
def create_dialog(ctx: AppContext, actor: Actor) -> None:
    actor = state.require_fresh(actor)
    providers = ctx.links.offered_providers()
    owners = {actor.username: actor.id}
    if actor.is_admin:
        owners |= {u.username: u.id for u in ctx.users.list() if u.active}
    # Outside the form: choosing a provider reruns the dialog with that provider's fields.
    provider = st.selectbox(
        "Provider", providers, format_func=lambda key: CATALOG.get(key).name, key="links:create:provider"
    )
    spec = CATALOG.get(provider).oauth if provider else None
    with st.form("links:create:form"):
        name = st.text_input("Integration name", placeholder="Acme Salesforce", max_chars=200)
        draft = {}
        for field_name in spec.draft_fields if spec else ():
            field = CATALOG.get(provider or "").field(field_name)
            if not field.sensitive:
                draft[field.name] = st.text_input(field.label, placeholder=field.placeholder or "", help=field.help)
        owner = st.selectbox(
            "Owner",
            list(owners),
            disabled=not actor.is_admin,
            help="Who owns the integration once the customer connects it; their tier applies.",
        )
        days = st.number_input("Expires after (days)", 1, MAX_DAYS, DEFAULT_DAYS, step=1)
        note = st.text_area("Note for staff (optional)", max_chars=MAX_NOTE, help="Never shown to the customer.")
        cancel_col, create_col = st.columns(2)
        cancelled = cancel_col.form_submit_button("Cancel", width="stretch")
        submitted = create_col.form_submit_button("Create link", type="primary", width="stretch")
    pending = st.session_state[CREATE]
    edited = confirm.changed(pending, provider or "", (name, draft, owner, int(days), note))
    if submitted:
        pending.pop(confirm.DISCARDING, None)
    if cancelled:
        confirm.cancel(pending, edited, close_create)
    if not submitted and confirm.asking_to_discard(pending, "this link", "links:create", close_create):
        return
    if submitted:
        try:
            issued = ctx.links.create(actor, provider or "", name, owners[owner], int(days), note, draft)
        except ConsoleError as exc:
            st.error(esc(_problem(exc)))
            return
        remember_issued(f"Link created for {issued.view.integration_name} ({issued.view.provider_name}).", issued)
        close_create()
        st.rerun()


def _consent_providers() -> list[str]:
    return [p.key for p in CATALOG if p.oauth is not None]


def _frame(links: list[LinkView]) -> pd.DataFrame:
    def when(moment):
        return moment.strftime("%Y-%m-%d %H:%M") if moment else ""

    return pd.DataFrame(
        [
            {
                "Integration": link.integration_name,
                "Provider": link.provider_name,
                "Kind": "Reconnect" if link.reconnects else "New",
                "Owner": link.owner,
                "State": STATE_WORDS[link.state],
                "Created": when(link.created_at),
                "Expires": when(link.expires_at),
                "Opened": when(link.opened_at),
                "Sent": link.sent_count,
                "Note": link.note,
                "Last problem": link.last_error or "",
            }
            for link in links
        ]
    )


def links_table(ctx: AppContext, actor: Actor) -> None:
    """The filters, the list, and the actions on the selected link."""
    left, right = st.columns([3, 2])
    chosen = left.pills(
        "State", list(STATES), selection_mode="multi", format_func=lambda s: STATE_WORDS[s], key="links:states"
    )
    providers = {key: CATALOG.get(key).name for key in _consent_providers()}
    provider = right.selectbox(
        "Provider", [None, *providers], format_func=lambda k: "Any provider" if k is None else providers[k]
    )
    links = ctx.links.list(actor, states=tuple(chosen or ()), provider=provider)
    if not links:
        st.info("No connect links match." if chosen or provider else "No connect links yet.")
        return
    st.dataframe(_frame(links), hide_index=True, width="stretch")
    by_id = {link.id: link for link in links}
    chosen_id = st.selectbox(
        "Act on a link",
        [None, *by_id],
        format_func=lambda i: (
            "Choose a link to revoke, send again or open"
            if i is None
            else f"{by_id[i].integration_name} · {by_id[i].provider_name} · {STATE_WORDS[by_id[i].state]} · "
            f"created {by_id[i].created_at:%Y-%m-%d %H:%M}"
        ),
        key=CHOSEN,
    )
    if chosen_id is not None:
        link_actions(ctx, actor, by_id[chosen_id])


def link_actions(ctx: AppContext, actor: Actor, link: LinkView) -> None:
    with st.container(border=True):
        st.markdown(f"**{esc(link.integration_name)}** · {esc(link.provider_name)} · {STATE_WORDS[link.state]}")
        if link.last_error and link.state != "completed":
            st.warning(f"The customer's last try failed: {esc(link.last_error)}", icon=":material/error:")
        live = link.state in ("created", "opened", "expired")
        cols = st.columns(3)
        if live:
            days = cols[0].number_input("Valid for (days)", 1, MAX_DAYS, DEFAULT_DAYS, key=f"links:{link.id}:days")
            if cols[1].button("Send again", key=f"links:{link.id}:resend", icon=":material/send:"):
                _resend(ctx, actor, link, int(days))
        if link.state in ("created", "opened") and confirm.destructive(
            "Revoke",
            f"links:{link.id}:revoke",
            f"Revoke the link for {link.integration_name}? Its address stops working at once.",
            icon=":material/block:",
            where=cols[2],
        ):
            _revoke(ctx, actor, link)
        if link.integration_id is not None and link.state == "completed":
            st.page_link(
                "app_pages/integration.py",
                label="Open the integration",
                query_params={"id": str(link.integration_id)},
                icon=":material/arrow_forward:",
            )


def _resend(ctx: AppContext, actor: Actor, link: LinkView, days: int) -> None:
    try:
        issued = ctx.links.resend(state.require_fresh(actor), link.id, days)
    except ConsoleError as exc:
        st.error(esc(_problem(exc)))
        return
    remember_issued(f"A new address for {link.integration_name}: the old one no longer works.", issued)
    st.session_state.pop(CHOSEN, None)  # its state changed: choose again from the fresh list
    st.rerun()


def _revoke(ctx: AppContext, actor: Actor, link: LinkView) -> None:
    try:
        ctx.links.revoke(state.require_fresh(actor), link.id)
    except ConsoleError as exc:
        st.error(esc(_problem(exc)))
        return
    state.flash(f"Revoked the link for {link.integration_name}.")
    st.session_state.pop(CHOSEN, None)
    st.rerun()


def reconnect_link_offer(ctx: AppContext, actor: Actor, integration_id: int) -> None:
    """On an integration that needs reconnecting: a link the customer uses to re-authorise it."""
    if st.button("Send a reconnect link", key=f"reconnect_link:{integration_id}", icon=":material/forward_to_inbox:"):
        try:
            issued = ctx.links.create_reconnect(state.require_fresh(actor), integration_id)
        except ConsoleError as exc:
            st.error(esc(_problem(exc)))
        else:
            remember_issued(f"Reconnect link for {issued.view.integration_name} ({issued.view.provider_name}).", issued)
    show_issued()


def show_completions(ctx: AppContext, actor: Actor) -> None:
    """The owner's notice: links their customers completed since they last looked, once each."""
    done = ctx.links.completions(actor)
    for completion in done:
        st.toast(
            esc(f"Your customer connected {completion.integration_name} ({completion.provider_name}) by link."),
            icon=":material/link:",
        )
    ctx.links.mark_seen(actor, [c.link_id for c in done])
