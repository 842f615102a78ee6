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
from core.ratelimit import Bucket, RateLimitedError

FORM_FIELDS = {"Form name": "Sign in", "Username": "User name", "Password": "Password", "Login": "Sign in"}
PENDING_COOKIE = "pending_cookie"


# A bcrypt hash that no password matches: a user name with too many failed sign-ins gets it for a while.
LOCKED_HASH = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds=4)).decode("ascii")
SIGN_IN_FAILURE = "sign_in_failure"


def authenticator(ctx: AppContext):
    # Imported here: only the sign-in form needs it, and a signed-in rerun should not pay its import.
    import streamlit_authenticator as stauth

    credentials = ctx.users.credentials()
    for username in ctx.limiter.over_limit(SIGN_IN_FAILURE) & credentials["usernames"].keys():
        credentials["usernames"][username]["password"] = LOCKED_HASH
    # Expiry 0: the authenticator writes no cookie of its own; the sessions table does that job.
    auth = stauth.Authenticate(
        credentials,
        ctx.settings.cookie_name + "_form",
        ctx.settings.cookie_key,
        0,
        auto_hash=False,
        login_sleep_time=0,
    )
    st.session_state["_sign_in_credentials"] = credentials  # the authenticator counts failures in it
    return auth


def _count_failures(ctx: AppContext) -> str | None:
    """Count this run's failed sign-ins per user name; the lock message when one is now locked."""
    entries = st.session_state.pop("_sign_in_credentials", {"usernames": {}})["usernames"]
    for username, entry in entries.items():
        if entry.get("failed_login_attempts"):
            bucket = Bucket(SIGN_IN_FAILURE, username)
            ctx.limiter.hit(bucket)
            try:
                ctx.limiter.check(bucket, "failed sign-ins for this user name")
            except RateLimitedError as exc:
                return str(exc)
    return None


def restore(ctx: AppContext) -> bool:
    """Sign in from the session cookie when it names a live session. True when signed in now."""
    if st.session_state.get("authentication_status"):
        return True
    if st.session_state.get("signed_out"):
        return False  # the browser may still send the old cookie; the session is revoked anyway
    token = st.context.cookies.get(ctx.settings.cookie_name)
    username = ctx.sessions.username_for(token)
    if username is None:
        return False
    st.session_state.update(authentication_status=True, username=username, session_token=token)
    return True


def sign_in_form(ctx: AppContext) -> None:
    """The form; on success a new database session is started and its cookie queued."""
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
        ctx.limiter.reset(Bucket(SIGN_IN_FAILURE, user.username))
        token = ctx.sessions.start(user.id, ctx.settings.cookie_expiry_days)
        st.session_state.update(session_token=token, signed_out=False)
        st.session_state[PENDING_COOKIE] = token


def still_valid(ctx: AppContext) -> bool:
    """False when the session was revoked elsewhere (signed out in another tab, deactivated)."""
    return ctx.sessions.username_for(st.session_state.get("session_token")) == st.session_state.get("username")


def sign_out(ctx: AppContext) -> None:
    ctx.sessions.revoke(st.session_state.get("session_token"))
    for key in ("actor", "session_token"):
        st.session_state.pop(key, None)
    # What the authenticator's own logout clears, without building it (and loading every user) first.
    st.session_state.update(
        signed_out=True, logout=True, name=None, username=None, authentication_status=None, email=None, roles=None
    )
    st.session_state[PENDING_COOKIE] = ""


def write_pending_cookie(ctx: AppContext) -> None:
    """Write (token) or clear ("") the session cookie in the browser. Rendered on every run while
    pending: an element rendered only once can be dropped by an immediate rerun before it runs."""
    if PENDING_COOKIE not in st.session_state:
        return
    token = st.session_state[PENDING_COOKIE]
    name, days = ctx.settings.cookie_name, ctx.settings.cookie_expiry_days
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    max_age = int(days * 86400) if token else 0
    cookie = f"{name}={token}; Max-Age={max_age}; Path=/; SameSite=Strict{secure}"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)
