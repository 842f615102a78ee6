"""The sign-in form while another process holds the SQLite database's write lock: a sentence, not a crash."""

from __future__ import annotations

import time

import pytest

from core import db
from core.errors import DatabaseBusyError
from tests.app.conftest import button, new_app
from tests.locks import BUSY_TIMEOUT, sqlite_path, write_locked
from ui import state


@pytest.fixture
def fresh_context(app_env, database_url, monkeypatch):
    """The app's cached services rebuilt with a half-second busy timeout (and dropped afterwards)."""
    sqlite_path(database_url)  # skips on PostgreSQL
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", BUSY_TIMEOUT)
    state._context_for.clear()
    yield app_env
    state._context_for.clear()


def test_signing_in_while_the_database_is_locked_says_it_is_busy(fresh_context, admin, database_url):
    at = new_app()
    at.run()  # the sign-in form, before the lock
    at.text_input[0].input("root")
    at.text_input[1].input("admin-password-1")
    started = time.monotonic()
    with write_locked(database_url):
        button(at, "Sign in").click()
        at.run()
    assert time.monotonic() - started < 15
    assert not at.exception, at.exception
    assert DatabaseBusyError.MESSAGE in [e.value for e in at.error]
    assert not at.session_state["authentication_status"]
    # Once the lock is gone, the same form signs in.
    at.text_input[0].input("root")
    at.text_input[1].input("admin-password-1")
    button(at, "Sign in").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["authentication_status"]
