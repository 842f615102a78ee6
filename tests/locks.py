"""Holding a SQLite database's write lock from a second connection, as another process would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

HOLD_SECONDS = 150  # what the attacker did; the connection below gives up long before, the lock is released after
BUSY_TIMEOUT = 0.5  # the suite's SQLITE_BUSY_TIMEOUT for these tests, so each refusal costs half a second


def sqlite_path(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip(
            "SQLite only: the busy timeout and 'database is locked' are SQLite's; PostgreSQL makes a writer wait "
            "for a row lock instead (TEST_DATABASE_URL points at PostgreSQL)"
        )
    return url.database


@contextmanager
def write_locked(database_url: str) -> Iterator[None]:
    """BEGIN EXCLUSIVE on another connection for the duration of the block (readers still read, in WAL mode)."""
    holder = sqlite3.connect(sqlite_path(database_url), isolation_level=None, timeout=HOLD_SECONDS)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.rollback()
        holder.close()
