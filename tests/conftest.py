"""Shared fixtures: one migrated database per run (SQLite, or TEST_DATABASE_URL), emptied per test."""

from __future__ import annotations

import functools
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import app_context
from core import db
from core.settings import Settings
from tests.factories import add_sealed_integration

TEST_KEY = "0f" * 32
# The fakes all listen on loopback, which the outbound address guard refuses unless it is allowed.
LOOPBACK_ALLOW = ("127.0.0.0/8", "::1")
TEST_COOKIE_KEY = "test-cookie-key-" + "c" * 32
# Each context gets a queue file of its own, so no test's jobs reach another's database rows.
QUEUE_DIR = Path(tempfile.mkdtemp(prefix="console-test-queues-"))


def new_queue_path() -> str:
    return str(QUEUE_DIR / f"{uuid.uuid4().hex}.sqlite3")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = db.make_engine(url)
    from core.models import Base

    Base.metadata.drop_all(engine)  # a PostgreSQL test database may hold a previous run
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    db.upgrade(url)
    return url


def make_settings(database_url: str, **overrides) -> Settings:
    values = dict(
        database_url=database_url,
        encryption_key=TEST_KEY,
        encryption_key_source="test",
        cookie_key=TEST_COOKIE_KEY,
        cookie_name="integrations_console_test",
        cookie_expiry_days=1,
        http_connect_timeout=2,
        http_read_timeout=2,
        http_max_retries=1,
        production=False,
        outbound_allow=LOOPBACK_ALLOW,
        engine_queue_path=new_queue_path(),
    )
    values.update(overrides)
    return Settings(**values)


def empty_database(factory) -> None:
    """Every table emptied, children before parents (a new table is covered without being listed)."""
    from core.integrations.ledgers import TABLES as LEDGERS
    from core.models import Base

    with factory.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
        for table in LEDGERS.values():  # the triggers wrote -1 rows as the integrations went
            session.execute(table.delete())


@pytest.fixture
def ctx(database_url):
    """The services, wired as the app wires them, over an empty database."""
    engine = db.make_engine(database_url)
    empty_database(db.make_session_factory(engine))  # before the key check: a test may have left a bad one
    engine.dispose()
    context = app_context.build(make_settings(database_url), migrate=False)
    yield context
    context.engine.dispose()


@pytest.fixture
def workers(ctx):
    """Start task engine consumer threads on the test context's queue: workers(n, tick_seconds=1).
    They are stopped (checks under way finish) when the test ends."""
    from core.engine.consumer import start_embedded, stop_embedded

    started = []

    def start(count: int = 4, tick_seconds: int = 1, periodic: bool = True, context=None):
        consumer = start_embedded((context or ctx).tasks.huey, count, tick_seconds, periodic)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        stop_embedded(consumer)


def wait_for(condition, timeout: float = 30.0, every: float = 0.1, what: str = "the condition"):
    """Poll condition() until it returns something true (returned), failing the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s (last value: {value!r})")
        time.sleep(every)


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    """The lowest bcrypt cost for the accounts every test creates: a hash at the real cost takes a quarter of a
    second of CPU, and each sign-in checks one. unit/test_users.py checks the real cost (monkeypatch.undo()).

    Autouse; a module's ``pytestmark = pytest.mark.usefixtures("fast_bcrypt")`` still works and changes nothing."""
    import bcrypt

    real = bcrypt.gensalt
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": real(4, prefix))


@pytest.fixture
def store_old_shape(ctx):
    """store_old_shape(actor, provider key, plain config) -> the id of an integration stored as an older form
    wrote it (tests.factories.add_sealed_integration): its secrets sealed, nothing checked or normalised."""
    return lambda actor, provider_key, plain: add_sealed_integration(ctx, actor, provider_key, plain)


@pytest.fixture
def admin(ctx):
    return ctx.users.create(
        None, "root", "Root Admin", "root@example.com", "admin-password-1", "admin", "ENTERPRISE"
    ).actor()


@pytest.fixture
def member(ctx):
    return ctx.users.create(
        None, "alice", "Alice Member", "alice@example.com", "alice-password-1", "member", "FREE"
    ).actor()


@pytest.fixture
def other_member(ctx):
    return ctx.users.create(
        None, "bob", "Bob Member", "bob@example.com", "bob-password-12", "member", "STARTER"
    ).actor()


@pytest.fixture
def owner(ctx):
    """Olga, an ENTERPRISE member (every provider open to her) who owns the integrations a test adds."""
    return ctx.users.create(None, "olga", "Olga", "olga@example.com", "olga-password-1", "member", "ENTERPRISE").actor()


@pytest.fixture(scope="session", autouse=True)
def component_scan_once():
    """Streamlit scans every installed package's metadata for v2 components each time an AppTest first runs
    (most of the CPU of a short AppTest); the packages do not change during a run, so the first scan is kept."""
    from streamlit.components.v2 import manifest_scanner

    scan = functools.cache(manifest_scanner.scan_component_manifests)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda max_workers=None: list(scan()))
        yield


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Every test: a request or a connection for anything but loopback fails it (tests/loopback.py)."""
    from tests.loopback import guard

    yield from guard(monkeypatch)
