"""Helpdesk: create Chatwoot agents and choose the inboxes they work in (FREE tier and up).

The rules (password policy, plus-addressed e-mails, seat limits, membership differences) live in
core.chatwoot.helpdesk; this page shows them and reports what the service did.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.audit import Actor
from core.chatwoot.client import ROLES, Agent, Inbox
from core.chatwoot.helpdesk import HelpdeskError, HelpdeskSnapshot, MembershipChange, password_rules
from core.errors import ConsoleError, ValidationError
from core.integrations.service import IntegrationView
from core.words import count
from ui import chatwoot, state
from ui.text import esc

ctx, actor = state.context(), state.actor()
NAME, ROLE, PASSWORD = "hd-name", "hd-role", "hd-password"
GRID_BASIS = "hd-grid-basis"
CREATED, SAVED, RESET_FORM = "hd-created", "hd-saved", "hd-reset-form"
AVAILABILITY = {"online": "Online", "available": "Available", "busy": "Busy", "offline": "Offline"}


def member_key(inbox_id: int, agent_id: int) -> str:
    return f"member-{inbox_id}-{agent_id}"


def refresh(fresh: Actor, view: IntegrationView) -> None:
    """Drop the cached reads and show Chatwoot as it is now (the grid included)."""
    chatwoot.forget(fresh, view)
    st.session_state.pop(GRID_BASIS, None)
    st.session_state.pop(SAVED, None)
    st.session_state.pop(CREATED, None)


# ----- header ----------------------------------------------------------------------------------------


def header(view: IntegrationView, snap: HelpdeskSnapshot) -> None:
    connection, seats = snap.connection, snap.seats
    left, right = st.columns([6, 1], vertical_alignment="center")
    with left:
        st.markdown(
            f"Connected to **{esc(connection.account_name)}** (account {connection.account_id}) at "
            f"{esc(connection.base_url)} as {esc(connection.user_name)}, an administrator."
        )
        st.caption(f":material/group: {esc(seats.message)}")  # over the limit, the form says so too
    with right:
        st.button(
            "Refresh",
            icon=":material/refresh:",
            key="hd-refresh",
            on_click=state.guarded(refresh, actor),
            args=(view,),
            help=f"Read Chatwoot again now (reads are reused for {chatwoot.TTL} seconds).",
            width="stretch",
        )


# ----- Create agent ------------------------------------------------------------------------------------


def email_preview(name: str, agents: list[Agent]) -> None:
    if not name.strip():
        st.caption(
            "The agent's e-mail is made from yours by plus-addressing (your-name+agent-name@your-domain), "
            "so Chatwoot's mail to the agent arrives in your own mailbox."
        )
        return
    try:
        email = ctx.helpdesk.preview_email(actor, name)
    except ValidationError as exc:
        st.error(esc(" ".join(exc.errors.values())), icon=":material/alternate_email:")
        return
    st.text(f"E-mail: {email}")  # plain text: the address reads (and copies) exactly as it will be
    st.caption("Chatwoot's mail to this address arrives in your own mailbox.")
    taken = next((a for a in agents if a.email.lower() == email), None)
    if taken is not None:
        st.warning(
            f"An agent with the e-mail {esc(email)} already exists in this account ({esc(taken.name)}). "
            "Choose a different name.",
            icon=":material/warning:",
        )


def show_password_rules(password: str) -> None:
    lines = []
    for rule in password_rules(password):
        if rule.ok:
            lines.append(f"- :green[✓ {rule.label}]")
        else:
            lines.append(f"- :{'red' if password else 'gray'}[✗ {rule.label}]")
    st.markdown("\n".join(lines))


def create_agent(view: IntegrationView, snap: HelpdeskSnapshot) -> None:
    connection, seats = snap.connection, snap.seats
    if st.session_state.pop(RESET_FORM, False):
        # Set (not deleted) before the inputs are drawn, so the browser's fields are emptied too.
        st.session_state[NAME] = st.session_state[PASSWORD] = ""
    if (created := st.session_state.get(CREATED)) and created[0] == view.id:
        st.success(esc(created[1]), icon=":material/how_to_reg:")
    inputs, feedback = st.columns([3, 2], gap="large")
    with inputs:
        name = st.text_input("Agent name", key=NAME, max_chars=255, placeholder="e.g. Bo Li")
        role = st.radio("Role", ROLES, key=ROLE, format_func=str.capitalize, horizontal=True)
        password = None
        if connection.has_platform_token:
            password = st.text_input(
                "Password",
                key=PASSWORD,
                type="password",
                help="The agent signs in to Chatwoot with this password. It is sent to Chatwoot only, never stored.",
            )
        else:
            st.info(
                "Chatwoot e-mails the new agent a link to set a password, so no password is asked for here. "
                "To set passwords here, add a Platform App token to the integration on the Integrations page.",
                icon=":material/mail:",
            )
    with feedback:
        email_preview(name, snap.agents)
        if password is not None:
            st.markdown("**Password**")
            show_password_rules(password)
    if not seats.can_add:
        st.warning(f"No agent seat left: {esc(seats.message)}", icon=":material/lock:")
    if not st.button("Create agent", type="primary", key="hd-create", disabled=not seats.can_add):
        return
    try:
        with st.spinner("Creating the agent in Chatwoot…"):
            result = ctx.helpdesk.create_agent(actor, view.id, name, role, password)
    except ValidationError as exc:
        message = " ".join(exc.errors.values())
    except ConsoleError as exc:
        message = str(exc)
    else:
        chatwoot.forget(actor, view)
        st.session_state[CREATED] = (view.id, result.message)
        st.session_state[GRID_BASIS] = None  # a new agent: the grid gains a row
        st.session_state[RESET_FORM] = True
        state.flash(f"Created {result.agent.name} ({result.email}).", ":material/how_to_reg:")
        st.rerun()
    chatwoot.forget(actor, view)  # a failed create may still have changed something (a platform user)
    st.session_state.pop(CREATED, None)
    st.error(esc(message), icon=":material/error:")
    st.toast(f"The agent was not created: {esc(message)}", icon=":material/error:")


# ----- Manage collaborators ----------------------------------------------------------------------------


def agents_table(snap: HelpdeskSnapshot) -> None:
    own = snap.connection.user_id
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": agent.name + (" (this integration's token)" if agent.id == own else ""),
                    "E-mail": agent.email,
                    "Role": agent.role.capitalize(),
                    "Availability": AVAILABILITY.get(agent.availability_status, agent.availability_status),
                    "Confirmed": agent.confirmed,
                }
                for agent in snap.agents
            ],
            columns=["Name", "E-mail", "Role", "Availability", "Confirmed"],
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "Confirmed": st.column_config.CheckboxColumn(
                "Confirmed", help="Whether the agent has confirmed the e-mail and set a password."
            )
        },
    )


REMOVING = "hd-removing"


@st.dialog("Remove agent", on_dismiss=lambda: st.session_state.pop(REMOVING, None))
def remove_dialog(view: IntegrationView, agent: Agent) -> None:
    state.require_fresh(actor)  # a dialog's reruns skip Home.py's check; same person, role and tier after it
    st.markdown(
        f"Remove **{esc(agent.name)}** ({esc(agent.email)}) from the Chatwoot account "
        f"**{esc(view.name)}**? They lose access to every inbox at once. Conversations they handled stay."
    )
    left, right = st.columns(2)
    if left.button("Remove from Chatwoot", type="primary", key="hd-remove-confirm", width="stretch"):
        try:
            with st.spinner(f"Removing {esc(agent.name)} in Chatwoot…"):
                ctx.helpdesk.delete_agent(actor, view.id, agent.id)
        except ConsoleError as exc:
            st.error(esc(exc))
            return
        st.session_state.pop(REMOVING, None)
        refresh(actor, view)
        state.flash(f"Removed {agent.name} from Chatwoot.", ":material/person_remove:")
        st.rerun()
    if right.button("Cancel", key="hd-remove-cancel", width="stretch"):
        st.session_state.pop(REMOVING, None)
        st.rerun()


def remove_agent(view: IntegrationView, snap: HelpdeskSnapshot) -> None:
    """Remove an agent from the account: chosen here, confirmed in a dialog (never the token's own user)."""
    removable = {agent.id: agent for agent in snap.agents if agent.id != snap.connection.user_id}
    if not removable:
        return
    with st.expander("Remove an agent"):
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        chosen = left.selectbox(
            "Agent",
            list(removable),
            format_func=lambda i: f"{removable[i].name} · {removable[i].email}",
            key="hd-remove-choice",
        )
        if right.button("Remove…", key="hd-remove", width="stretch"):
            st.session_state[REMOVING] = chosen
            st.rerun()
    removing = st.session_state.get(REMOVING)
    if removing is not None and (agent := removable.get(removing)) is not None:
        remove_dialog(view, agent)


def sync_grid(view: IntegrationView, snap: HelpdeskSnapshot) -> None:
    """Put Chatwoot's live membership into the checkboxes whenever what was read changes.

    Unsaved ticks survive reruns; a new read (Refresh, a save, another integration) replaces them, so
    the grid never shows a membership Chatwoot does not have.
    """
    basis = (
        view.id,
        tuple(agent.id for agent in snap.agents),
        tuple((inbox.id, tuple(sorted(snap.membership.get(inbox.id, ())))) for inbox in snap.inboxes),
    )
    reset = st.session_state.get(GRID_BASIS) != basis
    for inbox in snap.inboxes:
        for agent in snap.agents:
            key = member_key(inbox.id, agent.id)
            if reset or key not in st.session_state:
                st.session_state[key] = agent.id in snap.membership.get(inbox.id, set())
    st.session_state[GRID_BASIS] = basis


def pending_changes(snap: HelpdeskSnapshot) -> list[tuple[Inbox, Agent, bool]]:
    """(inbox, agent, add?) for every checkbox that differs from the membership read."""
    return [
        (inbox, agent, st.session_state[member_key(inbox.id, agent.id)])
        for inbox in snap.inboxes
        for agent in snap.agents
        if st.session_state[member_key(inbox.id, agent.id)] != (agent.id in snap.membership.get(inbox.id, set()))
    ]


def membership_grid(snap: HelpdeskSnapshot) -> None:
    widths = [3] + [2] * len(snap.inboxes)
    top = st.columns(widths)
    top[0].markdown("**Agent**")
    for column, inbox in zip(top[1:], snap.inboxes, strict=True):
        kind = "Website" if inbox.is_website else inbox.channel_type.removeprefix("Channel::")
        column.markdown(f"**{esc(inbox.name)}**  \n:gray[{esc(kind)}]")
    for agent in snap.agents:
        row = st.columns(widths, vertical_alignment="center")
        row[0].markdown(f"{esc(agent.name)}  \n:gray[{esc(agent.role.capitalize())}]")
        for column, inbox in zip(row[1:], snap.inboxes, strict=True):
            column.checkbox(
                f"{esc(agent.name)} works in {esc(inbox.name)}",
                key=member_key(inbox.id, agent.id),
                label_visibility="collapsed",
            )


def describe(change: tuple[Inbox, Agent, bool]) -> str:
    inbox, agent, add = change
    return f"{'add' if add else 'remove'} {esc(agent.name)} {'to' if add else 'from'} {esc(inbox.name)}"


def save_membership(view: IntegrationView, snap: HelpdeskSnapshot, changes) -> None:
    # Only the boxes toggled here are sent: a change made meanwhile (in Chatwoot, or by a colleague) to any
    # other agent or inbox stays, even though this page's snapshot does not show it yet.
    desired: dict[int, set[int]] = {}
    toggled: dict[int, set[int]] = {}
    for inbox, agent, add in changes:
        desired.setdefault(inbox.id, set())
        toggled.setdefault(inbox.id, set()).add(agent.id)
        if add:
            desired[inbox.id].add(agent.id)
    try:
        with st.spinner("Saving the inbox membership in Chatwoot…"):
            result = ctx.helpdesk.apply_membership(actor, view.id, desired, only_agents=toggled)
    except HelpdeskError as exc:
        st.session_state[SAVED] = (view.id, (), str(exc))
        state.flash("Nothing was changed in Chatwoot.", ":material/error:")
    else:
        st.session_state[SAVED] = (view.id, result.changes, result.reread_error)
        failed = len(result.failed)
        if failed:
            state.flash(f"{failed} of {len(result.changes)} changes failed.", ":material/error:")
        else:
            state.flash(f"Saved {count(len(result.changes), 'change')} in Chatwoot.")
    chatwoot.forget(actor, view)
    st.session_state.pop(GRID_BASIS, None)  # show Chatwoot's membership as read after the save
    st.rerun()


def last_save_report(view: IntegrationView) -> None:
    saved = st.session_state.get(SAVED)
    if not saved or saved[0] != view.id:
        return
    _, changes, problem = saved
    changes: tuple[MembershipChange, ...]
    failed = [c for c in changes if not c.ok]
    if not changes and problem:
        st.error(f"Nothing was changed: {esc(problem)}", icon=":material/error:")
        return
    if failed:
        st.error(
            f"{len(failed)} of {len(changes)} changes failed; the others were made. The grid below shows "
            "the membership Chatwoot has now.",
            icon=":material/error:",
        )
    elif changes:
        done = "The change was" if len(changes) == 1 else f"All {len(changes)} changes were"
        st.success(f"{done} made in Chatwoot.", icon=":material/check_circle:")
    else:
        st.info("Chatwoot already had this membership; nothing needed changing.")
    if problem:
        st.warning(esc(problem))
    if changes:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Inbox": c.inbox_name,
                        "Agent": c.agent_name,
                        "Change": "Add" if c.action == "add" else "Remove",
                        "Outcome": "✓ done" if c.ok else "✗ failed",
                        "Message": c.message,
                    }
                    for c in changes
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def collaborators(view: IntegrationView, snap: HelpdeskSnapshot) -> None:
    st.subheader("Agents")
    agents_table(snap)
    remove_agent(view, snap)
    st.subheader("Inboxes")
    last_save_report(view)
    if not snap.inboxes:
        st.info("This Chatwoot account has no inboxes yet. Create one in Chatwoot (Settings > Inboxes).")
        return
    if not snap.agents:
        st.info("This Chatwoot account has no agents yet. Create one on the Create agent tab.")
        return
    st.caption("Tick the inboxes each agent works in, then save. The grid shows Chatwoot's membership as read.")
    sync_grid(view, snap)
    membership_grid(snap)
    changes = pending_changes(snap)
    if changes:
        st.markdown(f"**{count(len(changes), 'unsaved change')}:** " + "; ".join(describe(c) for c in changes) + ".")
    left, right, _ = st.columns([2, 2, 5])
    if left.button("Save changes", type="primary", key="hd-save", disabled=not changes, width="stretch"):
        save_membership(view, snap, changes)
    if right.button("Discard changes", key="hd-discard", disabled=not changes, width="stretch"):
        st.session_state.pop(GRID_BASIS, None)
        st.rerun()


# ----- the page -------------------------------------------------------------------------------------------

st.title("Helpdesk")
current = chatwoot.pick_integration(actor, "hd-integration", "an administrator's access token")
if current is None:
    st.stop()
loaded = chatwoot.snapshot(actor, current)
if not loaded.ok or loaded.value is None:  # the latter only for the type: a read that succeeded has its value
    chatwoot.show_problem(loaded, on_refresh=state.guarded(lambda fresh, view=current: refresh(fresh, view), actor))
    st.stop()
snapshot = loaded.value
header(current, snapshot)
create_tab, manage_tab = st.tabs([":material/person_add: Create agent", ":material/groups: Manage collaborators"])
with create_tab:
    create_agent(current, snapshot)
with manage_tab:
    collaborators(current, snapshot)
