"""Running the app's pages in Streamlit's AppTest as a signed-in person, the way the benchmarks need it.

Signing in: a sign-in session is started with core.sessions.SessionService and put in the AppTest's
session state exactly as ui.auth.restore leaves it after reading the cookie, so Home.py's check
(ui.auth.still_valid, a database lookup of the token) runs on every render as it does for a person, and
no password is hashed: the figures are the page's, not bcrypt's.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module
from streamlit.testing.v1 import local_script_runner as local_script_runner_module

from bench.common import ROOT, BenchError

HOME = ROOT / "Home.py"
HELLO = 'import streamlit as st\n\nst.write("Hello")\n'
RUN_TIMEOUT = 300  # seconds one render may take


@contextmanager
def compiled_once():
    """Keep each script's bytecode between runs, as a running server does.

    AppTest builds new ScriptCaches for every run (one for the pages, one for the main script), so every
    run would parse, rewrite (Streamlit's "magic") and compile Home.py and the page again: tens of
    milliseconds a server pays once per process, not per render.
    """
    shared = ScriptCache()
    with (
        mock.patch.object(app_test_module, "ScriptCache", lambda: shared),
        mock.patch.object(local_script_runner_module, "ScriptCache", lambda: shared),
    ):
        yield


@contextmanager
def empty_body():
    """While active, Home.py renders everything but its page: the session check, the sidebar and the
    navigation run as always, the chosen page draws nothing. That is the app's empty page."""
    import streamlit as st

    real = st.navigation

    class EmptyPage:
        def __init__(self, page):
            self._page = page

        def run(self) -> None:
            pass

        def __getattr__(self, name):
            return getattr(self._page, name)

    with mock.patch.object(st, "navigation", lambda *args, **kwargs: EmptyPage(real(*args, **kwargs))):
        yield


def hello_app() -> AppTest:
    at = AppTest.from_string(HELLO, default_timeout=RUN_TIMEOUT)
    return checked(at.run(), "the hello page")


def start_session(ctx, username: str) -> str:
    """A live sign-in session for `username`; the token its cookie would hold."""
    user = ctx.users.get_by_username(username)
    return ctx.sessions.start(user.id, 1)


def signed_in(username: str, token: str, page: str) -> AppTest:
    """Home.py, signed in as `username`, set to open `page` (a path like app_pages/integrations.py) on
    its first run, so that run renders that page and no other. Not run yet."""
    at = AppTest.from_file(str(HOME), default_timeout=RUN_TIMEOUT)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["session_token"] = token
    return at.switch_page(page)


def signed_in_app(username: str, token: str, page: str) -> AppTest:
    """Home.py, signed in as `username`, having rendered `page` once."""
    return on_page(checked(signed_in(username, token, page).run(), page), page)


def on_page(at: AppTest, page: str) -> AppTest:
    """The app when its last run rendered `page`; BenchError when it is not in the navigation or another
    page was rendered (AppTest keeps which page it finished on privately: checked only when it does)."""
    finished = getattr(at, "_finished_page_script_hash", None)
    try:
        at.switch_page(page)  # after a run this matches the pages st.navigation registered
    except ValueError as exc:
        raise BenchError(f"{page} is not in the navigation: {exc}") from exc
    if finished is not None and getattr(at, "_page_hash", finished) != finished:
        raise BenchError(f"the app rendered another page than {page}")
    return at


def checked(at: AppTest, what: str) -> AppTest:
    """The rendered app, or BenchError when it raised or fell back to the sign-in form."""
    if at.exception:
        raise BenchError(f"{what} raised: {at.exception[0].message}")
    if any(t.label == "User name" for t in at.text_input):
        raise BenchError(f"{what} shows the sign-in form: the benchmark session was not accepted")
    return at
