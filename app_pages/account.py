"""Your account (every role): your own name and e-mail, and your password.

The rules (what a usable name, e-mail and password are; only your own account) live in core.users. The
forms submit through callbacks, so the page that follows shows the outcome at once (the sidebar's name
included), every field keeps what was typed when something is wrong, and each error sits under its field.
"""

from __future__ import annotations

import streamlit as st

from core.audit import Actor
from core.errors import ConflictError, ConsoleError, ValidationError
from ui import auth, state
from ui.text import esc

ctx, actor = state.context(), state.actor()
PROFILE, PROFILE_ERRORS, PROFILE_DONE = "own_profile_editing", "own_profile_errors", "own_profile_done"
CURRENT, NEW, AGAIN = "own_password_current", "own_password_new", "own_password_again"
PASSWORD_ERRORS, PASSWORD_DONE = "own_password_errors", "own_password_done"


def open_profile(who: Actor) -> None:
    """Capture the account as stored now (values and version): the form shows and saves against it, so
    a save after a change made elsewhere (an administrator, another tab) is refused, not silently undone."""
    nonce = st.session_state.get(PROFILE, {}).get("nonce", 0) + 1
    st.session_state[PROFILE] = {"view": ctx.users.get_by_username(who.username), "nonce": nonce}
    st.session_state.pop(PROFILE_ERRORS, None)


def save_profile(fresh: Actor) -> None:
    editing = st.session_state[PROFILE]
    prefix = f"own{editing['nonce']}"
    name, email = st.session_state.get(f"{prefix}:name", ""), st.session_state.get(f"{prefix}:email", "")
    try:
        ctx.users.update_own_profile(fresh, editing["view"].version, name, email)
    except ValidationError as exc:
        st.session_state[PROFILE_ERRORS] = dict(exc.errors)
    except ConflictError as exc:
        st.session_state[PROFILE_ERRORS] = {"conflict": str(exc)}
    except ConsoleError as exc:
        st.session_state[PROFILE_ERRORS] = {"form": str(exc)}
    else:
        open_profile(fresh)  # the next save starts from what was just stored
        st.session_state[PROFILE_DONE] = "Saved your name and e-mail."


def change_password(fresh: Actor) -> None:
    handle = state.session_handle(ctx)
    current, new, again = (st.session_state.get(key) or "" for key in (CURRENT, NEW, AGAIN))
    try:
        ctx.users.change_own_password(fresh, current, new, again, keep_handle=handle)
    except ValidationError as exc:
        st.session_state[PASSWORD_ERRORS] = dict(exc.errors)
        return
    except ConsoleError as exc:
        st.session_state[PASSWORD_ERRORS] = {"form": str(exc)}
        return
    st.session_state.pop(PASSWORD_ERRORS, None)
    for key in (CURRENT, NEW, AGAIN):
        st.session_state[key] = ""
    if auth.keep_signed_in(ctx, handle):
        st.session_state[PASSWORD_DONE] = (
            "Your password was changed. You stay signed in here; every other sign-in of yours has ended."
        )
    else:
        state.flash("Your password was changed, but this sign-in had ended meanwhile: sign in with the new password.")


st.title("Your account")
if PROFILE not in st.session_state or st.session_state[PROFILE]["view"].id != actor.id:
    open_profile(actor)
editing = st.session_state[PROFILE]
prefix = f"own{editing['nonce']}"
details, password = st.columns(2, gap="large")

with details:
    st.subheader("Name and e-mail")
    st.caption(f"You sign in as **{esc(actor.username)}**; an administrator can change your role and tier.")
    errors = st.session_state.get(PROFILE_ERRORS, {})
    if done := st.session_state.pop(PROFILE_DONE, None):
        st.success(done, icon=":material/check_circle:")
    auth.field_error(errors, "form")
    if refused := errors.get("conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        if st.button("Load the stored version", key="own_reload", icon=":material/refresh:"):
            open_profile(actor)  # knowingly discards the edits made here
            st.rerun()
    with st.form("own_profile"):
        st.text_input("Full name", value=editing["view"].name, key=f"{prefix}:name", max_chars=200, autocomplete="name")
        auth.field_error(errors, "name")
        st.text_input(
            "E-mail",
            value=editing["view"].email,
            key=f"{prefix}:email",
            max_chars=254,
            autocomplete="email",
            help="Alerts are sent here, and the helpdesk suggests agents' e-mails made from it.",
        )
        auth.field_error(errors, "email")
        st.form_submit_button("Save name and e-mail", type="primary", on_click=state.guarded(save_profile, actor))

with password:
    st.subheader("Password")
    errors = st.session_state.get(PASSWORD_ERRORS, {})
    if done := st.session_state.pop(PASSWORD_DONE, None):
        st.success(done, icon=":material/key:")
    auth.field_error(errors, "form")
    with st.form("own_password"):
        # For password managers: the account the passwords belong to.
        st.text_input("User name", value=actor.username, disabled=True, autocomplete="username")
        st.text_input("Current password", key=CURRENT, type="password", max_chars=200, autocomplete="current-password")
        auth.field_error(errors, "current")
        st.text_input(
            "New password",
            key=NEW,
            type="password",
            max_chars=200,
            autocomplete="new-password",
            help="At least 10 characters, different from the current one.",
        )
        auth.field_error(errors, "password")
        st.text_input("New password again", key=AGAIN, type="password", max_chars=200, autocomplete="new-password")
        auth.field_error(errors, "again")
        st.form_submit_button("Change password", type="primary", on_click=state.guarded(change_password, actor))
