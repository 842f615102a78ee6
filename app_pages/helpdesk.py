"""Helpdesk: create Chatwoot agents and choose the inboxes they work in (FREE tier and up).

The rules (password policy, plus-addressed e-mails, seat limits, membership differences) live in
core.chatwoot.helpdesk; this page shows them and reports what the service did.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.audit import Actor
from core.chatwoot.client import ROLES, Agent, Inbox
from core.chatwoot.helpdesk import (
    HelpdeskError,
    HelpdeskSnapshot,
    MembershipChange,
    chosen_agent_email,
    password_rules,
)
from core.errors import ConsoleError, ValidationError
from core.integrations.service import IntegrationView
from core.words import count
from ui import chatwoot, state
from ui.text import esc

ctx, actor = state.context(), state.actor()
NAME, ROLE, PASSWORD, EMAIL = "hd-name", "hd-role", "hd-password", "hd-email"
SUGGESTED = "hd-email-suggested"  # the plus-address last put in the e-mail field
GRID_BASIS = "hd-grid-basis"
CREATED, SAVED, RESET_FORM = "hd-created", "hd-saved", "hd-reset-form"
AVAILABILITY = {"online": "Online", "available": "Available", "busy": "Busy", "offline": "Offline"}


def member_key(agent_id: int) -> str:
    """The multiselect of the inboxes one agent works in."""
    return f"member-{agent_id}"


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


def suggest_email(fresh: Actor) -> None:
    """The name's on_change: the e-mail field follows the name while it still holds the suggestion (or
    nothing); an address typed by hand is never replaced."""
    name = st.session_state.get(NAME) or ""
    try:
        suggestion = ctx.helpdesk.preview_email(fresh, name) if name.strip() else ""
    except ValidationError:
        suggestion = ""  # the name's own problem is shown under the e-mail field
    if (st.session_state.get(EMAIL) or "") in ("", st.session_state.get(SUGGESTED, "")):
        st.session_state[EMAIL] = suggestion
    st.session_state[SUGGESTED] = suggestion


def use_suggestion() -> None:
    st.session_state[EMAIL] = st.session_state.get(SUGGESTED, "")


def email_feedback(name: str, email: str, agents: list[Agent]) -> None:
    """Under the e-mail field: what is wrong with it, whose it already is, or where its mail goes."""
    suggested = st.session_state.get(SUGGESTED, "")
    if not email.strip():
        st.caption(
            "Type the agent's e-mail, or a name first: the console suggests a plus-address made from yours "
            "(your-name+agent-name@your-domain), so Chatwoot's mail to the agent arrives in your own mailbox."
        )
        if name.strip():
            try:
                ctx.helpdesk.preview_email(actor, name)
            except ValidationError as exc:
                st.error(esc(" ".join(exc.errors.values())), icon=":material/alternate_email:")
        return
    try:
        chosen = chosen_agent_email(email)
    except ValidationError as exc:
        chosen = None
        st.error(esc(exc.errors["email"]), icon=":material/alternate_email:")
    if chosen is not None and chosen == suggested:
        st.caption("Suggested from your own address: Chatwoot's mail to the agent arrives in your mailbox.")
    elif chosen is not None:
        st.caption("Chatwoot's mail to the agent goes to this address.")
    if suggested and chosen != suggested:
        st.button("Use the suggested address", key="hd-email-suggest", on_click=use_suggestion, help=suggested)
    if chosen is None:
        return
    taken = next((a for a in agents if a.email.lower() == chosen), None)
    if taken is not None:
        st.warning(
            f"An agent with the e-mail {esc(chosen)} already exists in this account ({esc(taken.name)}). "
            "Choose a different e-mail.",
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
        st.session_state[NAME] = st.session_state[PASSWORD] = st.session_state[EMAIL] = ""
        st.session_state[SUGGESTED] = ""
    if (created := st.session_state.get(CREATED)) and created[0] == view.id:
        st.success(esc(created[1]), icon=":material/how_to_reg:")
    inputs, feedback = st.columns([3, 2], gap="large")
    with inputs:
        name = st.text_input(
            "Agent name",
            key=NAME,
            max_chars=255,
            placeholder="e.g. Bo Li",
            autocomplete="off",
            on_change=state.guarded(suggest_email, actor),
        )
        email = st.text_input(
            "Agent e-mail",
            key=EMAIL,
            max_chars=254,
            placeholder="e.g. bo.li@example.com",
            autocomplete="off",
            help="The address the agent signs in to Chatwoot with. The suggestion is a plus-address of yours.",
        )
        role = st.radio("Role", ROLES, key=ROLE, format_func=str.capitalize, horizontal=True)
        password = None
        if connection.has_platform_token:
            password = st.text_input(
                "Password",
                key=PASSWORD,
                type="password",
                autocomplete="new-password",
                help="The agent signs in to Chatwoot with this password. It is sent to Chatwoot only, never stored.",
            )
        else:
            st.info(
                "Chatwoot e-mails the new agent a link to set a password, so no password is asked for here. "
                "To set passwords here, add a Platform App token to the integration on the Integrations page.",
                icon=":material/mail:",
            )
    with feedback:
        email_feedback(name, email, snap.agents)
        if password is not None:
            st.markdown("**Password**")
            show_password_rules(password)
    if not seats.can_add:
        st.warning(f"No agent seat left: {esc(seats.message)}", icon=":material/lock:")
    if not st.button("Create agent", type="primary", key="hd-create", disabled=not seats.can_add):
        return
    try:
        with st.spinner("Creating the agent in Chatwoot…"):
            result = ctx.helpdesk.create_agent(actor, view.id, name, role, password, email=email)
    except ValidationError as exc:
        message = " ".join(exc.errors.values())
    except ConsoleError as exc:
        message = str(exc)
    else:
        chatwoot.forget(actor, view)
        st.session_state[CREATED] = (view.id, result.message)
        st.session_state[GRID_BASIS] = None  # a new agent: the grid gains a row
        st.session_state[RESET_FORM] = True
        st.rerun()  # the success above the form is the one message (no toast beside it)
    chatwoot.forget(actor, view)  # a failed create may still have changed something (a platform user)
    st.session_state.pop(CREATED, None)
    st.error(esc(message), icon=":material/error:")


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
    """Put Chatwoot's live membership into the inbox pickers whenever what was read changes.

    Unsaved choices survive reruns; a new read (Refresh, a save, another integration) replaces them, so
    the pickers never show a membership Chatwoot does not have.
    """
    basis = (
        view.id,
        tuple(agent.id for agent in snap.agents),
        tuple((inbox.id, tuple(sorted(snap.membership.get(inbox.id, ())))) for inbox in snap.inboxes),
    )
    reset = st.session_state.get(GRID_BASIS) != basis
    for agent in snap.agents:
        key = member_key(agent.id)
        if reset or key not in st.session_state:
            st.session_state[key] = [i.id for i in snap.inboxes if agent.id in snap.membership.get(i.id, set())]
    st.session_state[GRID_BASIS] = basis


def pending_changes(snap: HelpdeskSnapshot) -> list[tuple[Inbox, Agent, bool]]:
    """(inbox, agent, add?) for every inbox an agent's picker differs on from the membership read."""
    changes = []
    for inbox in snap.inboxes:
        for agent in snap.agents:
            chosen = inbox.id in st.session_state[member_key(agent.id)]
            if chosen != (agent.id in snap.membership.get(inbox.id, set())):
                changes.append((inbox, agent, chosen))
    return changes


def inbox_label(inbox: Inbox) -> str:
    kind = "Website" if inbox.is_website else inbox.channel_type.removeprefix("Channel::")
    return f"{inbox.name} ({kind})"


def membership_grid(snap: HelpdeskSnapshot, changes: list[tuple[Inbox, Agent, bool]]) -> None:
    """One expander per agent, its inboxes a multiselect: as usable on a phone as on a wide screen."""
    inboxes = {inbox.id: inbox for inbox in snap.inboxes}
    changed = {agent.id for _, agent, _ in changes}
    for agent in snap.agents:
        selection = set(st.session_state[member_key(agent.id)])
        chosen = [inbox.name for inbox in snap.inboxes if inbox.id in selection]
        works_in = ", ".join(chosen) if chosen else "no inbox"
        mark = " · unsaved" if agent.id in changed else ""
        with st.expander(f"{esc(agent.name)} · {esc(works_in)}{mark}", icon=":material/person:"):
            st.multiselect(
                f"Inboxes {esc(agent.name)} works in",
                list(inboxes),
                key=member_key(agent.id),
                format_func=lambda i: inbox_label(inboxes[i]),
                placeholder="No inbox: choose the inboxes this agent works in",
                help=f"{agent.role.capitalize()} · {agent.email}",
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
    else:  # last_save_report shows the outcome as one message, with the changes behind it
        st.session_state[SAVED] = (view.id, result.changes, result.reread_error)
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
    # One message for the outcome; a failed re-read after it is a sentence of the same message.
    afterwards = f" {esc(problem)}" if problem else ""  # "The membership could not be read back: … Refresh …"
    if failed:
        st.error(
            f"{len(failed)} of {len(changes)} changes failed; the others were made. The grid below shows "
            f"the membership Chatwoot has now.{afterwards}",
            icon=":material/error:",
        )
    elif changes:
        done = "The change was" if len(changes) == 1 else f"All {len(changes)} changes were"
        st.success(f"{done} made in Chatwoot.{afterwards}", icon=":material/check_circle:")
    else:
        st.info(f"Chatwoot already had this membership; nothing needed changing.{afterwards}")
    if not changes:
        return
    with st.expander(f"The {count(len(changes), 'change')}, one by one", expanded=bool(failed)):
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
    st.caption("Open an agent to choose the inboxes they work in, then save. Each shows Chatwoot's membership as read.")
    sync_grid(view, snap)
    changes = pending_changes(snap)
    membership_grid(snap, changes)
    if changes:
        st.markdown(f"**{count(len(changes), 'unsaved change')}:** " + "; ".join(describe(c) for c in changes) + ".")
    left, right, _ = st.columns([2, 2, 3])
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
