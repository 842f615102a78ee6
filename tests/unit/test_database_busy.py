"""A SQLite database write-locked by another process: a sentence within a bounded time, never an exception."""

from __future__ import annotations

import time

import pytest

import app_context
from core import db
from core.errors import DatabaseBusyError, StorageError
from tests.conftest import empty_database, make_settings
from tests.locks import BUSY_TIMEOUT, sqlite_path, write_locked

CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "1", "apiKey": "cw-token-busy-0123456789"}
BOUND = 10 * BUSY_TIMEOUT + 3  # a few statements may each wait once; never the lock's 150 s


@pytest.fixture
def busy_ctx(database_url, monkeypatch):
    sqlite_path(database_url)  # skips on PostgreSQL
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", BUSY_TIMEOUT)
    engine = db.make_engine(database_url)
    empty_database(db.make_session_factory(engine))
    engine.dispose()
    context = app_context.build(make_settings(database_url), migrate=False)
    yield context
    context.engine.dispose()


@pytest.fixture
def person(busy_ctx):
    return busy_ctx.users.create(
        None, "dora", "Dora Admin", "dora@example.com", "dora-password-1", "admin", "ENTERPRISE"
    )


def test_the_busy_timeout_is_a_few_seconds():
    assert 1 <= db.SQLITE_BUSY_TIMEOUT <= 10


def test_testing_a_saved_integration_while_the_database_is_locked_answers_with_a_sentence(
    busy_ctx, person, database_url
):
    view = busy_ctx.integrations.create(person.actor(), "Acme desk", "CHATWOOT", CHATWOOT)
    started = time.monotonic()
    with write_locked(database_url):
        result = busy_ctx.integrations.test(person.actor(), view.id)
    assert time.monotonic() - started < BOUND
    assert not result.success
    assert result.message == DatabaseBusyError.MESSAGE
    assert "database is busy" in result.message and "Try again in a moment" in result.message


def test_testing_a_form_while_the_database_is_locked_answers_with_a_sentence(busy_ctx, person, database_url):
    started = time.monotonic()
    with write_locked(database_url):
        result = busy_ctx.integrations.test_configuration(person.actor(), "CHATWOOT", CHATWOOT)
    assert time.monotonic() - started < BOUND
    assert not result.success and result.message == DatabaseBusyError.MESSAGE


def test_saving_while_the_database_is_locked_is_refused_with_the_busy_sentence(busy_ctx, person, database_url):
    started = time.monotonic()
    with write_locked(database_url), pytest.raises(StorageError, match="database is busy"):
        busy_ctx.integrations.create(person.actor(), "Acme desk", "CHATWOOT", CHATWOOT)
    assert time.monotonic() - started < BOUND
    assert busy_ctx.integrations.list_integrations(person.actor()) == []


def test_starting_a_sign_in_session_while_the_database_is_locked_raises_the_busy_sentence(
    busy_ctx, person, database_url
):
    started = time.monotonic()
    with write_locked(database_url), pytest.raises(StorageError, match="Try again in a moment"):
        busy_ctx.sessions.start(person.id, 1)
    assert time.monotonic() - started < BOUND
