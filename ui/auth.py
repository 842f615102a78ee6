"""Sign-in: the console's own form (core.signin checks the password); a database session behind a cookie.

The session lives in the database (core/sessions.py), so a reload or a second app process signs the
person back in, and signing out ends it server-side even if the browser keeps the cookie. A person who
signs in with a one-time password (set by an administrator) gets a session that opens nothing but
"Choose a new password" (core/sessions.py); choosing it rotates the session.

The form is drawn here rather than by streamlit-authenticator: its login form marks every field
autocomplete="off", which keeps password managers from filling or saving the password.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

import streamlit as st

from app_context import AppContext
from core.errors import ConsoleError, StorageError, ValidationError
from core.paths import SESSION_PATH, SIGN_OUT_PATH
from core.signin import SignInRefused, verify_sign_in
from ui import state
from ui.text import esc

PENDING_COOKIE = "pending_cookie"
_SIGN_OUT_ID, _JUST_SIGNED_IN = "_sign_out_id", "_just_signed_in"
USERNAME_FIELD, PASSWORD_FIELD = "sign_in_username", "sign_in_password"
CHOOSE_ERRORS = "choose_password_errors"
CHOOSE_NEW, CHOOSE_AGAIN = "choose_password_new", "choose_password_again"


def field_error(errors: Mapping[str, str], field: str) -> None:
    """The service's message for one field, drawn right under that field."""
    if message := errors.get(field):
        st.error(esc(message), icon=":material/error:")


def restore(ctx: AppContext) -> bool:
    """Sign in from the session cookie when it names a live session. True when signed in now."""
    if st.session_state.get("authentication_status"):
        return True
    if st.session_state.get("signed_out"):
        return False  # the browser may still send the old cookie; the session is revoked anyway
    token = st.context.cookies.get(ctx.settings.cookie_name)
    handle = ctx.sessions.handle_for(token)
    username = ctx.sessions.username_for_handle(handle)
    if username is None:
        return False
    st.session_state.update(authentication_status=True, username=username)
    st.session_state[state.SESSION_HANDLE] = handle
    return True


def choosing_password(ctx: AppContext) -> str | None:
    """The user name when this tab's session may do one thing only: replace a one-time password."""
    handle = st.session_state.get(state.SESSION_HANDLE)
    if handle is None and not st.session_state.get("signed_out"):
        handle = ctx.sessions.handle_for(st.context.cookies.get(ctx.settings.cookie_name), restricted=True)
    username = ctx.sessions.password_change_for_handle(handle)
    if username is not None:
        st.session_state[state.SESSION_HANDLE] = handle
        st.session_state["username"] = username
    return username


def sign_in_form(ctx: AppContext) -> None:
    """The form; on success a new database session is started and its cookie's hand-over queued.

    This tab is signed in at once (its session is named by a handle kept in server memory). The browser
    gets the cookie from the server (routes.py): the page posts a single-use ticket to POST /auth/session,
    which answers with an HttpOnly Set-Cookie. No script of the page ever sees the cookie's token.
    """
    st.session_state.setdefault("authentication_status", None)
    with st.form("sign_in"):
        st.subheader("Sign in")
        st.text_input("User name", key=USERNAME_FIELD, max_chars=64, autocomplete="username")
        st.text_input("Password", key=PASSWORD_FIELD, type="password", max_chars=200, autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        _sign_in(ctx, st.session_state.get(USERNAME_FIELD) or "", st.session_state.get(PASSWORD_FIELD) or "")
    except StorageError as exc:  # the database is busy or refused the write: not signed in, and told why
        st.session_state.update(authentication_status=None, username=None)
        st.error(str(exc))


def _sign_in(ctx: AppContext, username: str, password: str) -> None:
    result = verify_sign_in(ctx.users, ctx.limiter, username, password)
    if isinstance(result, SignInRefused):
        st.session_state.update(authentication_status=False, username=None)
        st.error(result.message)
        return
    handle, ticket = ctx.sessions.start_with_ticket(result.id, ctx.settings.cookie_expiry_days)
    st.session_state.pop(state.SESSION_TOKEN, None)
    st.session_state.pop(PASSWORD_FIELD, None)  # not kept in server memory longer than needed
    st.session_state.update(signed_out=False, username=result.username)
    # With a one-time password the session opens only "Choose a new password" (choosing_password).
    st.session_state["authentication_status"] = not result.must_change_password
    st.session_state[state.SESSION_HANDLE] = handle
    st.session_state[PENDING_COOKIE] = ticket
    st.session_state[_JUST_SIGNED_IN] = True


def signed_in_now() -> bool:
    """Whether this run's form just started a session (full, or only for choosing a password); once."""
    return bool(st.session_state.pop(_JUST_SIGNED_IN, False))


def keep_signed_in(ctx: AppContext, handle: str | None) -> bool:
    """After this person's password changed: a new session for this tab (every older one ended).
    False when this tab's session had ended meanwhile; the tab is signed out then."""
    try:
        rotated = ctx.sessions.rotate(handle, ctx.settings.cookie_expiry_days)
    except StorageError:
        rotated = None
    if rotated is None:
        sign_out(ctx)
        return False
    new_handle, ticket = rotated
    st.session_state[state.SESSION_HANDLE] = new_handle
    st.session_state[PENDING_COOKIE] = ticket
    return True


def _choose(ctx: AppContext) -> None:
    """The form's submit callback (before the page runs, so the page shows the outcome at once)."""
    handle = st.session_state.get(state.SESSION_HANDLE)
    new, again = st.session_state.get(CHOOSE_NEW) or "", st.session_state.get(CHOOSE_AGAIN) or ""
    try:
        user = ctx.users.choose_first_password(handle or "", new, again)
    except ValidationError as exc:
        st.session_state[CHOOSE_ERRORS] = dict(exc.errors)
        return
    except ConsoleError as exc:
        st.session_state[CHOOSE_ERRORS] = {"form": str(exc)}
        return
    st.session_state.pop(CHOOSE_ERRORS, None)
    for key in (CHOOSE_NEW, CHOOSE_AGAIN):
        st.session_state.pop(key, None)
    if keep_signed_in(ctx, handle):
        st.session_state.update(authentication_status=True, username=user.username)
        state.flash("Your new password is set, and you are signed in with it.", ":material/key:")
    else:
        state.flash("Your new password is set, but this sign-in had ended: sign in with the new password.")


def choose_password_form(ctx: AppContext, username: str) -> None:
    """All a person signed in with a one-time password sees until they have chosen their own."""
    st.title("Choose a new password")
    st.markdown(
        f"You signed in as **{esc(username)}** with a one-time password (one an administrator gave you, or "
        "the first administrator's, printed when the console first started). Choose your own password to "
        "continue; the one-time password stops working then."
    )
    errors = st.session_state.get(CHOOSE_ERRORS, {})
    field_error(errors, "form")
    with st.form("choose_password"):
        # For password managers: the account the new password belongs to.
        st.text_input("User name", value=username, disabled=True, autocomplete="username")
        st.text_input(
            "New password",
            key=CHOOSE_NEW,
            type="password",
            max_chars=200,
            autocomplete="new-password",
            help="At least 10 characters, different from the one-time password.",
        )
        field_error(errors, "password")
        st.text_input(
            "New password again", key=CHOOSE_AGAIN, type="password", max_chars=200, autocomplete="new-password"
        )
        field_error(errors, "again")
        st.form_submit_button("Save my password", type="primary", on_click=_choose, args=(ctx,))
    if st.button("Sign out", key="choose_sign_out"):
        sign_out(ctx)
        st.rerun()


def still_valid(ctx: AppContext) -> bool:
    """False when the session was revoked elsewhere (signed out in another tab, deactivated)."""
    username = ctx.sessions.username_for_handle(state.session_handle(ctx))
    return username is not None and username == st.session_state.get("username")


def sign_out(ctx: AppContext) -> None:
    ctx.sessions.revoke_handle(state.session_handle(ctx))
    for key in ("actor", state.SESSION_HANDLE, state.SESSION_TOKEN):
        st.session_state.pop(key, None)
    st.session_state.update(signed_out=True, username=None, authentication_status=None)
    st.session_state[PENDING_COOKIE] = ""  # the server clears the cookie (POST /auth/sign-out)
    st.session_state[_SIGN_OUT_ID] = secrets.token_hex(8)


# The page's half of the hand-over (routes.py is the server's): post the ticket in the body, same origin.
# The script runs in the console's page (st.html), never with anything a customer's server sent.
_HAND_OVER = """<script>
(function () {
  var done = (window.__consoleCookie = window.__consoleCookie || {});
  var key = %(key)s;
  if (done[key]) { return; }
  done[key] = true;
  fetch(%(path)s, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(%(body)s)
  }).catch(function () { done[key] = false; });
})();
</script>"""


def write_pending_cookie(ctx: AppContext) -> None:
    """Have the server set (ticket) or clear ("") the HttpOnly session cookie in this browser.

    Rendered on every run while pending: an element rendered only once can be dropped by an immediate
    rerun before it runs. A set is pending until the server has redeemed the ticket (or it expired)."""
    if PENDING_COOKIE not in st.session_state:
        return
    ticket = st.session_state[PENDING_COOKIE]
    if ticket and not ctx.sessions.ticket_pending(state.session_handle(ctx)):
        st.session_state.pop(PENDING_COOKIE)  # redeemed, or too late: a reload then shows sign-in
        return
    if ticket:
        path, body, key = SESSION_PATH, {"ticket": ticket}, "set:" + ticket[:12]
    else:
        path, body, key = SIGN_OUT_PATH, {}, "clear:" + st.session_state.get(_SIGN_OUT_ID, "")
    script = _HAND_OVER % {"key": json.dumps(key), "path": json.dumps(path), "body": json.dumps(body)}
    st.html(script, unsafe_allow_javascript=True)
