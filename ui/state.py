"""The services for this process and the person signed in to this session."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

import app_context
from core.audit import Actor
from core.errors import ConsoleError, NotFoundError, ValidationError
from core.settings import load_settings
from ui.text import esc


def _release(ctx: app_context.AppContext) -> None:
    """A context dropped from the cache (other settings, or the cache cleared) gives its connections back."""
    ctx.engine.dispose()


@st.cache_resource(show_spinner=False, on_release=_release)
def _context_for(database_url: str, key_fingerprint: str) -> app_context.AppContext:
    ctx, password = app_context.prepare(load_settings())
    if password:
        # Printed once, on the console of whoever started the app; never shown on a page.
        from core.users import first_admin_notice  # loaded by prepare() already

        print(first_admin_notice(password))
    return ctx


def context() -> app_context.AppContext:
    """One engine and set of services per process and configuration (st.cache_resource)."""
    settings = load_settings()
    # Every setting: a new key ring (rotation), another task queue or SMTP server must build new services.
    # Hashed, because the settings hold the keys (and the hash is only a cache key in this process).
    fingerprint = hashlib.sha256(repr(settings).encode()).hexdigest()
    return _context_for(settings.database_url, fingerprint)


def actor() -> Actor:
    """The signed-in person. Home.py puts it in the session after every successful sign-in check."""
    current = st.session_state.get("actor")
    if current is None:
        st.error("You are signed out. Sign in again.")
        st.stop()
    return current


# The tab's sign-in session: its handle (ui/auth.py); a cookie's token from before handles is accepted too.
SESSION_HANDLE, SESSION_TOKEN = "session_handle", "session_token"
REFUSED = "You are signed out, or your account was changed or deactivated. Nothing was done: sign in again."
CHANGED = "Your role or tier changed since this page was shown. Nothing was done: reload the page and try again."


def session_handle(ctx: app_context.AppContext) -> str | None:
    """The handle of this tab's sign-in session, or None."""
    handle = st.session_state.get(SESSION_HANDLE)
    if handle is None and (token := st.session_state.get(SESSION_TOKEN)):
        handle = ctx.sessions.handle_for(token)
        if handle is not None:
            st.session_state[SESSION_HANDLE] = handle
    return handle


def fresh_actor(expected: Actor | None = None) -> Actor | None:
    """The signed-in person as the database says now, or None.

    Re-read at the moment an action runs: the session must still be live (not signed out, expired or
    revoked by a deactivation or password reset), the account active, and, when ``expected`` (the actor
    the page was rendered for) is given, the same person with the same role and tier.
    """
    ctx = context()
    return _fresh(ctx, session_handle(ctx), st.session_state.get("username"), expected)


def _fresh(ctx: app_context.AppContext, handle: str | None, username: str | None, expected: Actor | None):
    live = ctx.sessions.username_for_handle(handle)
    if live is None or live != username:
        return None
    try:
        user = ctx.users.get_by_username(live)
    except NotFoundError:
        return None
    if not user.active:
        return None
    current = user.actor()
    if expected is not None and (current.id, current.role, current.tier) != (expected.id, expected.role, expected.tier):
        return None
    return current


def refusal(expected: Actor | None = None, handle: str | None = None) -> str:
    """The sentence for an action fresh_actor refused."""
    ctx = context()
    handle = handle if handle is not None else session_handle(ctx)
    if expected is not None and ctx.sessions.username_for_handle(handle) == expected.username:
        return CHANGED
    return REFUSED


def guarded(action: Callable[..., Any], expected: Actor | None = None) -> Callable[..., Any]:
    """A widget callback (on_click, on_change) that runs only for a fresh actor, who is passed first.

    Callbacks run before the page's script, so before Home.py's session check: without this an open tab
    of a signed-out, deactivated or demoted person would still act. Refused, it does nothing but say why.
    """

    @functools.wraps(action)
    def run(*args: Any, **kwargs: Any) -> Any:
        current = fresh_actor(expected)
        if current is None:
            flash(refusal(expected), ":material/lock:")
            return None
        return action(current, *args, **kwargs)

    return run


def deferred(build: Callable[[Actor], str | bytes], expected: Actor) -> Callable[[], str | bytes]:
    """Data for st.download_button built only when clicked, for a fresh actor (passed to ``build``).

    Streamlit runs the callable on a worker thread without this session's state, after no session check
    of Home.py's: so the session is named now and re-checked in the database when it runs. Refused, the
    download holds the refusal sentence and nothing else, and ``build`` never runs.
    """
    ctx = context()
    handle, username = session_handle(ctx), st.session_state.get("username")

    def data() -> str | bytes:
        current = _fresh(context(), handle, username, expected)
        if current is None:
            return refusal(expected, handle)
        return build(current)

    return data


def require_fresh(expected: Actor) -> Actor:
    """For a fragment or dialog (st.fragment, st.dialog), whose reruns skip Home.py's session check: the
    fresh actor, or the refusal shown and the fragment stopped."""
    current = fresh_actor(expected)
    if current is None:
        st.error(refusal(expected), icon=":material/lock:")
        st.stop()
    return current


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """A toast that survives the rerun that follows a write. ``message`` is plain text (names in it are
    remote or user-supplied), so it is escaped here and never rendered as Markdown."""
    st.session_state["flash"] = (esc(message), icon)


def show_flash() -> None:
    if pending := st.session_state.pop("flash", None):
        st.toast(pending[0], icon=pending[1])


def field_errors(errors: Mapping[str, str], labels: Mapping[str, str] | None = None) -> str:
    """A ValidationError's messages as one error's Markdown: one line per field, each naming its field
    ("Webhook URL: Enter an https address."), escaped. ``labels`` maps the service's keys to the form's labels."""
    lines = []
    for key, message in errors.items():
        name = (labels or {}).get(key) or key.replace("_", " ").capitalize()
        lines.append(esc(f"{name}: {message}"))
    return "  \n".join(lines)


def attempt(action: Callable[[], Any], labels: Mapping[str, str] | None = None) -> tuple[bool, Any]:
    """Run a service call for a form: (True, its result), or (False, None) with what went wrong shown as one
    message: for a ValidationError a line per field naming it (``labels``: the form's label of each key),
    the sentence for any other ConsoleError."""
    try:
        return True, action()
    except ValidationError as exc:
        st.error(field_errors(exc.errors, labels))
    except ConsoleError as exc:
        st.error(esc(exc))
    return False, None
