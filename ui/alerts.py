"""The Alerts page (app_pages/alerts.py): the person's subscriptions, their recent alerts, a warning for
each channel whose last delivery failed, and for administrators the open incidents. Every name, address
and error reaches Markdown only through esc."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import app_context
from core.alerts.channels import CHANNEL_LABELS, CHANNELS
from core.alerts.subscriptions import ALERT_STATES, DEFAULT_STATES, SubscriptionView
from core.audit import Actor
from core.errors import ConsoleError
from core.fields import MASK
from core.integrations.health import Health
from core.signing import generate_secret
from ui import confirm, state
from ui.text import esc

EDITING = "alerts:editing"  # {"id": None} to add, {"view": SubscriptionView} to edit
DELETING = "alerts:deleting"
STATE_LABELS = {s: Health(s).label for s in ALERT_STATES}
TARGET_LABELS = {"email": "E-mail address", "slack": "Slack webhook URL", "webhook": "Webhook URL"}
STATUS_LABELS = {"pending": "waiting", "sent": "sent", "failed": "failed", "suppressed": "not sent"}
KIND_LABELS = {
    "worsened": "worsened",
    "recovered": "recovered",
    "incident_opened": "incident opened",
    "incident_closed": "incident closed",
    "test": "test",
}


def _states(view: SubscriptionView) -> str:
    shown = ", ".join(STATE_LABELS[s] for s in view.states) or "no state"
    return shown + (", and recoveries" if view.recovery else "")


def close_dialog() -> None:
    st.session_state.pop(EDITING, None)


def close_delete() -> None:
    st.session_state.pop(DELETING, None)


def subscription_form(ctx: app_context.AppContext, actor: Actor) -> None:
    current = st.session_state.get(EDITING)
    if not current:
        return
    state.require_fresh(actor)  # a dialog's reruns skip Home.py's check
    view: SubscriptionView | None = current.get("view")
    if view is None:
        channel = st.selectbox("Channel", CHANNELS, format_func=lambda c: CHANNEL_LABELS[c], key="alerts:channel")
    else:
        channel = view.channel
        st.caption(f"{CHANNEL_LABELS[channel]} · {esc(view.target_hint)}")
    with st.form("alerts:subscription"):
        target = st.text_input(
            TARGET_LABELS[channel],
            value=view.shown_target if view else "",
            type="default" if channel == "email" else "password",
            help=None if channel == "email" else "Stored encrypted and never shown again; leave the mask to keep it.",
        )
        secret = None
        if channel == "webhook":
            secret = st.text_input(
                "Signing secret",
                value=MASK if view else current.setdefault("secret", generate_secret()),
                type="password",
                help="A new strong secret is filled in: reveal it and give it to the receiver before you save. "
                "Deliveries are signed with it as the webhook integration's are (X-Console-Signature).",
            )
        states = st.multiselect(
            "Alert me when an integration becomes",
            ALERT_STATES,
            default=list(view.states) if view else list(DEFAULT_STATES),
            format_func=lambda s: STATE_LABELS[s],
        )
        recovery = st.checkbox("And when it recovers", value=view.recovery if view else True)
        scopes = ["own", "all"] if actor.is_admin else ["own"]
        scope = st.radio(
            "About",
            scopes,
            index=scopes.index(view.scope) if view and view.scope in scopes else 0,
            format_func=lambda s: "My integrations" if s == "own" else "Everyone's integrations",
            horizontal=True,
        )
        active = st.checkbox("On", value=view.active if view else True, help="Switched off, it sends nothing.")
        save_col, cancel_col = st.columns(2)
        submitted = save_col.form_submit_button("Save subscription", type="primary", width="stretch")
        cancelled = cancel_col.form_submit_button("Cancel", width="stretch")
    entered = (target, secret, list(states), recovery, scope, active)
    if submitted:
        current.pop(confirm.DISCARDING, None)
    if cancelled:
        untouched = (
            view.shown_target if view else "",
            (MASK if view else current.get("secret")) if channel == "webhook" else None,
            list(view.states) if view else list(DEFAULT_STATES),
            view.recovery if view else True,
            view.scope if view and view.scope in scopes else scopes[0],
            view.active if view else True,
        )
        confirm.cancel(current, entered != untouched, close_dialog)
    if not submitted and confirm.asking_to_discard(current, "this subscription", "alerts", close_dialog):
        return
    if not submitted:
        return

    def save() -> None:
        if view is None:
            ctx.subscriptions.create(actor, channel, target, states, recovery, scope, active, secret)
        else:
            ctx.subscriptions.update(actor, view.id, target, states, recovery, scope, active, secret)

    labels = {
        "target": TARGET_LABELS[channel],
        "secret": "Signing secret",
        "states": "Alert me when an integration becomes",
        "scope": "About",
        "channel": "Channel",
    }
    if not state.attempt(save, labels)[0]:
        return
    close_dialog()
    state.flash("Saved the alert subscription.")
    st.rerun()


def delete_confirmation(ctx: app_context.AppContext, actor: Actor) -> None:
    view: SubscriptionView | None = st.session_state.get(DELETING)
    if view is None:
        return
    state.require_fresh(actor)
    st.write(f"Delete the {view.channel_label} subscription to **{esc(view.target_hint)}**? This cannot be undone.")
    left, right = st.columns(2)
    if left.button("Delete subscription", type="primary", icon=":material/delete_forever:", width="stretch"):
        try:
            ctx.subscriptions.delete(actor, view.id)
        except ConsoleError as exc:
            st.error(esc(exc))
            return
        close_delete()
        state.flash("Deleted the alert subscription.", ":material/delete:")
        st.rerun()
    if right.button("Cancel", key="alerts:delete:cancel", width="stretch"):
        close_delete()
        st.rerun()


def failing_channels(ctx: app_context.AppContext, actor: Actor) -> None:
    for problem in ctx.subscriptions.failing_channels(actor):
        when = "is being retried" if problem.retrying else "failed"
        st.warning(
            f"**Alerts by {esc(problem.channel_label)} to {esc(problem.target_hint)} are not getting through.** "
            f"The last one {when}: {esc(problem.error)}\n\n"
            "Fix what it names (edit the subscription if the address is wrong), then use **Send a test alert**.",
            icon=":material/notifications_off:",
        )


def subscriptions(ctx: app_context.AppContext, actor: Actor, email: str) -> None:
    st.subheader("Your subscriptions")
    views = ctx.subscriptions.list(actor)
    if not views:
        st.info(
            f"You have no subscription, so alerts go by e-mail to your account address ({esc(email)}) when one "
            "of your integrations becomes failing, paused or needs reconnecting, and when it recovers. Add a "
            "subscription to choose the states and channels yourself; a switched-off one mutes alerts."
        )
    for view in views:
        with st.container(border=True):
            left, right = st.columns([3, 2])
            status = "" if view.active else " · switched off"
            left.markdown(f"**{esc(view.channel_label)}** to {esc(view.target_hint)}{status}")
            about = "everyone's integrations" if view.scope == "all" else "your integrations"
            left.caption(f"About {about}: {esc(_states(view))}")
            edit, test, delete = right.columns(3)
            if edit.button("Edit", key=f"alerts:edit:{view.id}", width="stretch"):
                st.session_state[EDITING] = {"view": view}
                st.rerun()
            if test.button("Send a test alert", key=f"alerts:test:{view.id}", width="stretch"):
                try:
                    sentence = ctx.alerts.send_test(actor, view.id)
                except ConsoleError as exc:
                    st.session_state["alerts:test_result"] = ("error", str(exc))
                else:
                    st.session_state["alerts:test_result"] = ("success", sentence)
                st.rerun()
            if delete.button(
                "Delete…", key=f"alerts:delete:{view.id}", icon=":material/delete:", width="stretch", help="Asks first."
            ):
                st.session_state[DELETING] = view
                st.rerun()
    if result := st.session_state.pop("alerts:test_result", None):
        kind, sentence = result
        (st.success if kind == "success" else st.error)(esc(sentence))
    if st.button("Add a subscription", icon=":material/add_alert:", type="primary"):
        st.session_state[EDITING] = {"id": None}
        st.rerun()


def recent_deliveries(ctx: app_context.AppContext, actor: Actor) -> None:
    st.subheader("Recent alerts")
    rows = ctx.subscriptions.recent_deliveries(actor)
    if not rows:
        st.caption("No alerts yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "Created (UTC)": d.created_at,
                "What": KIND_LABELS.get(d.kind, d.kind),
                "Integration": d.integration_name or (f"#{d.integration_id}" if d.integration_id else ""),
                "Channel": f"{CHANNEL_LABELS.get(d.channel, d.channel)} · {d.target_hint}",
                "Status": STATUS_LABELS.get(d.status, d.status),
                "Attempts": d.attempts,
                "Why": d.last_error or "",
            }
            for d in rows
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={"Created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )


def open_incidents(ctx: app_context.AppContext, actor: Actor) -> None:
    st.subheader("Open incidents")
    incidents = ctx.subscriptions.open_incidents(actor)
    if not incidents:
        st.caption("No outage is open.")
        return
    frame = pd.DataFrame(
        [
            {
                "Incident": i.id,
                "Provider or host": i.host or i.provider or i.key,
                "Integrations": i.member_count,
                "First seen (UTC)": i.first_seen,
                "Opened (UTC)": i.opened_at,
            }
            for i in incidents
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def render(ctx: app_context.AppContext, actor: Actor, email: str) -> None:
    """The whole page; dialogs open from session state."""
    st.title("Alerts")
    st.caption(
        "One alert when an integration's health gets worse, one when it recovers, and one for an outage "
        "that hits many integrations at once, instead of one per check."
    )
    failing_channels(ctx, actor)
    subscriptions(ctx, actor, email)
    recent_deliveries(ctx, actor)
    if actor.is_admin:
        open_incidents(ctx, actor)
    if st.session_state.get(EDITING):
        title = "Edit alert subscription" if st.session_state[EDITING].get("view") else "Add an alert subscription"
        # Not dismissible: Escape or a click beside it would throw away what was typed; Cancel asks first.
        st.dialog(title, dismissible=False)(subscription_form)(ctx, actor)
    elif st.session_state.get(DELETING):
        st.dialog("Delete alert subscription", on_dismiss=close_delete)(delete_confirmation)(ctx, actor)
