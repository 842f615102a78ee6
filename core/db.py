"""Engine, session factory and migrations. SQLite file by default, DATABASE_URL for PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DatabaseBusyError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Seconds a SQLite statement waits for another connection's write lock before giving up with
# DatabaseBusyError: a page, a sign-in or a test answers within this, never after minutes.
SQLITE_BUSY_TIMEOUT = 5.0
POOL_SIZE = 5  # connections kept open; more are opened up to `connections` and closed when returned


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 here, the driver we install."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, connections: int = 10) -> Engine:
    """connections: how many the process may hold at once. A task consumer's threads each hold one while
    they record a check, so it asks for its thread count and a margin: a pool smaller than that made
    threads wait 30 s for a connection and fail their job (sqlalchemy's TimeoutError)."""
    url = normalise_url(url)
    pool = {"pool_size": POOL_SIZE, "max_overflow": max(0, connections - POOL_SIZE)}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _busy_as_storage_error)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _busy_as_storage_error(context) -> None:
    """'database is locked' (another process writes, beyond the busy timeout) becomes DatabaseBusyError,
    a StorageError whose sentence the pages, the sign-in and the CLI show as it is."""
    original = context.original_exception
    if isinstance(original, sqlite3.OperationalError) and any(
        words in str(original) for words in ("database is locked", "database table is locked", "database is busy")
    ):
        raise DatabaseBusyError() from context.sqlalchemy_exception or original


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every migration; safe to run on every start, and cheap when there is nothing to apply
    (alembic, slow to import, is loaded only when a migration is due)."""
    engine = make_engine(url)  # creates the SQLite file's folder (data/ on a fresh clone)
    try:
        if current_revision(engine) == head_revision():
            return
    finally:
        engine.dispose()
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest migration: the one revision no other migration revises."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions |= set(re.findall(r'^revision = "([^"]+)"', source, re.M))
        revised |= set(re.findall(r'^down_revision = "([^"]+)"', source, re.M))
    (head,) = revisions - revised
    return head


# The tables whose reads the SQLite planner cannot choose well without statistics (migration 0023).
PLANNED_TABLES = ("users", "integrations")


def refresh_planner_statistics(engine: Engine) -> None:
    """SQLite: ANALYZE the tables the lists read (1 s at a million integrations), once a day on the
    scheduler, so the planner's picture grows with the data. PostgreSQL's autovacuum does this itself."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as connection:
        for table in PLANNED_TABLES:
            connection.execute(text(f"ANALYZE {table}"))
