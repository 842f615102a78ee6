"""Sign-in: streamlit-authenticator checks the password; a database session behind a cookie keeps it.

The session lives in the database (core/sessions.py), so a reload or a second app process signs the
person back in, and signing out ends it server-side even if the browser keeps the cookie.
"""

from __future__ import annotations

import json
import secrets

import bcrypt
import streamlit as st

from app_context import AppContext
from core.errors import StorageError
from core.signin import SignInRefused, verify_sign_in
from ui import state

FORM_FIELDS = {"Form name": "Sign in", "Username": "User name", "Password": "Password", "Login": "Sign in"}
PENDING_COOKIE = "pending_cookie"
# The server's routes (routes.py) that set and clear the HttpOnly sign-in cookie.
SESSION_PATH, SIGN_OUT_PATH = "/auth/session", "/auth/sign-out"
_SIGN_OUT_ID = "_sign_out_id"


# A bcrypt hash that no password matches. The authenticator is only given this one: the password is
# checked by core.signin (below), and if that hook were ever lost, no one could sign in (not everyone).
LOCKED_HASH = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds=4)).decode("ascii")
_REFUSAL = "_sign_in_refusal"


def authenticator(ctx: AppContext):
    # Imported here: only the sign-in form needs it, and a signed-in rerun should not pay its import.
    import streamlit_authenticator as stauth

    credentials = ctx.users.credentials()
    for entry in credentials["usernames"].values():
        entry["password"] = LOCKED_HASH
    # Expiry 0: the authenticator writes no cookie of its own; the sessions table does that job.
    auth = stauth.Authenticate(
        credentials,
        ctx.settings.cookie_name + "_form",
        ctx.settings.cookie_key,
        0,
        auto_hash=False,
        # streamlit_authenticator annotates its **kwargs as Optional[Dict]; login_sleep_time is a number of seconds.
        login_sleep_time=0,  # pyright: ignore[reportArgumentType]  # see above
    )
    # The authenticator draws the form and sets the session state; whether the password is right, and
    # whether the user name may try at all, is core.signin's rule (an attempt slot before bcrypt).
    model = auth.authentication_controller.authentication_model
    model.check_credentials = lambda username, password: _check(ctx, model.credentials, username, password)
    return auth


def _check(ctx: AppContext, credentials: dict | None, username: str, password: str) -> bool:
    result = verify_sign_in(ctx.users, ctx.limiter, username, password)
    if isinstance(result, SignInRefused):
        st.session_state[_REFUSAL] = result
        return False
    # The authenticator holds the credentials it was made with (typed Optional by the library).
    return credentials is not None and result.username in credentials["usernames"]  # activated later: next time


def _count_failures(ctx: AppContext) -> str | None:
    """The lock message when this run's sign-in was refused because the user name is locked (the
    failure itself was counted by core.signin, before the password was checked)."""
    refusal = st.session_state.pop(_REFUSAL, None)
    return refusal.message if refusal is not None and refusal.locked else None


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


def sign_in_form(ctx: AppContext) -> None:
    """The form; on success a new database session is started and its cookie's hand-over queued.

    This tab is signed in at once (its session is named by a handle kept in server memory). The browser
    gets the cookie from the server (routes.py): the page posts a single-use ticket to POST /auth/session,
    which answers with an HttpOnly Set-Cookie. No script of the page ever sees the cookie's token.
    """
    try:
        _sign_in(ctx)
    except StorageError as exc:  # the database is busy or refused the write: not signed in, and told why
        st.session_state.update(authentication_status=None, username=None, name=None)
        st.error(str(exc))


def _sign_in(ctx: AppContext) -> None:
    auth = authenticator(ctx)  # built only here: it loads every active user's hash
    auth.login(location="main", fields=FORM_FIELDS)
    status = st.session_state.get("authentication_status")
    if status is False:
        locked = _count_failures(ctx)
        st.error(locked or "That user name and password do not match an active account. Check them and try again.")
    elif status:
        user = ctx.users.get_by_username(st.session_state["username"])
        handle, ticket = ctx.sessions.start_with_ticket(user.id, ctx.settings.cookie_expiry_days)
        st.session_state.pop(state.SESSION_TOKEN, None)
        st.session_state.update(signed_out=False)
        st.session_state[state.SESSION_HANDLE] = handle
        st.session_state[PENDING_COOKIE] = ticket


def still_valid(ctx: AppContext) -> bool:
    """False when the session was revoked elsewhere (signed out in another tab, deactivated)."""
    username = ctx.sessions.username_for_handle(state.session_handle(ctx))
    return username is not None and username == st.session_state.get("username")


def sign_out(ctx: AppContext) -> None:
    ctx.sessions.revoke_handle(state.session_handle(ctx))
    for key in ("actor", state.SESSION_HANDLE, state.SESSION_TOKEN):
        st.session_state.pop(key, None)
    # What the authenticator's own logout clears, without building it (and loading every user) first.
    st.session_state.update(
        signed_out=True, logout=True, name=None, username=None, authentication_status=None, email=None, roles=None
    )
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
