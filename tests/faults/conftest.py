"""Fault tests: real `manage.py worker` processes (and a real redis-server) that the tests kill, restart or cut
off from their database, on the test database (SQLite, or TEST_DATABASE_URL's PostgreSQL).

A worker is started with the environment a deployment gives it; everything it does is read back from the
database and the fake hosts (tests/fakes/slow_hosts.py), never from its memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.engine.queue import make_huey
from core.models import CheckRecord, Integration, utcnow
from tests.browser.conftest import free_port
from tests.conftest import TEST_COOKIE_KEY, TEST_KEY, new_queue_path

ROOT = Path(__file__).resolve().parents[2]
BOOT_SECONDS = 30  # a worker imports the app and connects within this, even on a loaded CI machine
STOP_SECONDS = 10
REDIS_PORT = 6379


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def is_postgresql(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


@dataclass(frozen=True)
class Queue:
    """Where the workers' jobs wait: a SQLite queue file, or a Redis queue of its own name."""

    kind: str  # "sqlite" | "redis"
    redis_url: str | None = None
    path: str = ""
    name: str = ""

    def env(self) -> dict[str, str]:
        if self.redis_url:
            return {"REDIS_URL": self.redis_url, "ENGINE_QUEUE_NAME": self.name}
        return {"ENGINE_QUEUE_PATH": self.path}

    def flush(self) -> None:
        """Drop what is left in the queue (a Redis queue outlives the test otherwise)."""
        with contextlib.suppress(Exception):
            make_huey(self.redis_url, self.path or new_queue_path(), self.name or "unused").flush()


def redis_queue(port: int = REDIS_PORT) -> Queue:
    return Queue("redis", redis_url=f"redis://127.0.0.1:{port}/15", name=f"faults-{uuid.uuid4().hex[:12]}")


QUEUES = [
    "sqlite",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not answers(REDIS_PORT), reason="no Redis answers on 127.0.0.1:6379: the Redis queue is not tested"
        ),
    ),
]


@pytest.fixture
def queue(request):
    """The parametrized queue ("sqlite" or "redis"), emptied after the test."""
    made = redis_queue() if request.param == "redis" else Queue("sqlite", path=new_queue_path())
    yield made
    made.flush()


def worker_env(database_url: str, queue: Queue, tmp: Path, **settings: str) -> dict[str, str]:
    """What a deployment gives `manage.py worker`: the database, the keys, the queue, the settings."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INTEGRATION_ENCRYPTION_KEY": TEST_KEY,
        "COOKIE_KEY": TEST_COOKIE_KEY,
        "CONSOLE_SECRETS_DIR": str(tmp / "secrets"),  # nothing may be generated: both keys are given
        "OUTBOUND_ALLOW": "127.0.0.0/8",  # the fake hosts listen on 127.0.0.x
        "HTTP_CONNECT_TIMEOUT": "2",
        "HTTP_READ_TIMEOUT": "15",  # longer than any fake host's delay here
        "HTTP_MAX_RETRIES": "0",
        "ENGINE_TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **queue.env(),
    }
    for name in ("INTEGRATION_ENCRYPTION_KEYS", "INTEGRATION_ENCRYPTION_KEY_FILE", "CONSOLE_ENV", "REDIS_URL"):
        if name not in queue.env():
            env.pop(name, None)
    env.update(settings)
    return env


class Worker:
    """One `manage.py worker` process, its output in a log file. `logged=True` runs the same command with
    Python's logging at INFO (tests/faults/logged_worker.py), so Huey names every job it ran."""

    def __init__(self, env: dict[str, str], log: Path, threads: int = 4, logged: bool = False):
        self.log = log
        command = (
            [sys.executable, "-m", "tests.faults.logged_worker"] if logged else [sys.executable, "manage.py", "worker"]
        )
        with log.open("w") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [*command, "--workers", str(threads)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:]) or "(no output)"

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM (checks under way finish), then SIGKILL to whatever is left of its process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_SECONDS)


@pytest.fixture
def start_worker(request, tmp_path):
    """start_worker(env, threads=4, logged=False) -> Worker; every worker is stopped when the test ends,
    and the end of each one's log is printed when the test failed."""
    started: list[Worker] = []

    def start(env: dict[str, str], threads: int = 4, logged: bool = False) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(started) + 1}.log", threads, logged)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for number, worker in enumerate(started, 1):
            print(f"----- the end of worker {number}'s log (pid {worker.pid}):\n{worker.tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class RedisServer:
    """A redis-server of the test's own on a free loopback port, kept in memory only, that a test may kill
    and start again on the same port (its data gone, as after a crash of a server without persistence)."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=STOP_SECONDS)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH (apt-get install -y redis-server): the Redis restart is not tested")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


# ----- reading what the workers did --------------------------------------------------------------------


def history(factory, integration_id: int) -> list[CheckRecord]:
    with factory() as session:
        return list(
            session.scalars(
                select(CheckRecord).where(CheckRecord.integration_id == integration_id).order_by(CheckRecord.id)
            )
        )


def checked_since(factory, integration_id: int, since: datetime) -> list[CheckRecord]:
    return [c for c in history(factory, integration_id) if c.at > since]


def due_now(factory, ids: list[int]) -> None:
    """Make the integrations due at once (instead of somewhere within their first interval)."""
    with factory.begin() as session:
        session.execute(update(Integration).where(Integration.id.in_(ids)).values(next_check_at=utcnow()))


def plans_run_out(factory, ids: list[int], leases_too: bool = False) -> None:
    """Fast-forward the clock for these integrations: their plans (and, with leases_too, their check leases)
    end now instead of in minutes. A plan lasts the lease time plus a tick, and a lease at least
    core.integrations.leases.LEASE_TIME (5 minutes), which no test can wait for; setting them into the past
    is exactly what that much time would do, and the engine's own code then finds them expired."""
    past = utcnow() - timedelta(seconds=1)
    values: dict = {"planned_until": past}
    if leases_too:
        values["check_lease_until"] = past
    with factory.begin() as session:
        session.execute(update(Integration).where(Integration.id.in_(ids)).values(**values))
