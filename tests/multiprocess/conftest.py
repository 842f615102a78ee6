"""Two `streamlit run` processes on one PostgreSQL database, Debian's chromium, and a slow fake CRM.

Everything a person can tell apart between processes must come from the database; these fixtures give
the tests two independent processes (own memory, own Streamlit sessions, own caches) sharing only it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import free_port
from tests.chromium import launched_browser
from tests.conftest import TEST_COOKIE_KEY, TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
COOKIE_NAME = "integrations_console_auth"
START_SECONDS = 45  # both processes together must answer /_stcore/health within this
STOP_SECONDS = 10


def is_postgresql(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


@dataclass
class App:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _stop(app: App) -> None:
    """SIGTERM to the process group (streamlit and anything it spawned), then SIGKILL to what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(app.process.pid, sig)
        except ProcessLookupError:
            break  # nothing left in the group
        try:
            app.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(app.process.pid, signal.SIGKILL)  # a straggler the leader left behind
            break


def _wait_healthy(apps: list[App], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    waiting = list(apps)
    while waiting and time.monotonic() < deadline:
        for app in list(waiting):
            if app.process.poll() is not None:
                raise RuntimeError(f"{app.name} exited with {app.process.returncode}:\n{app.log_tail()}")
            try:
                if requests.get(f"{app.url}/_stcore/health", timeout=1).ok:
                    waiting.remove(app)
            except requests.RequestException:
                pass
        time.sleep(0.2)
    if waiting:
        names = ", ".join(f"{a.name} ({a.url})" for a in waiting)
        raise TimeoutError(f"no answer within {seconds} s from {names}:\n{waiting[0].log_tail()}")


@pytest.fixture(scope="module")
def apps(database_url, tmp_path_factory):
    """Processes A and B: the same database, keys and settings, each on its own free loopback port."""
    with running_apps(database_url, tmp_path_factory.mktemp("multiprocess")) as started:
        yield started


@contextlib.contextmanager
def running_apps(database_url: str, tmp: Path, settings: dict[str, str] | None = None) -> Iterator[tuple[App, App]]:
    """Start processes A and B with the shared environment plus `settings`; stop both when done."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INTEGRATION_ENCRYPTION_KEY": TEST_KEY,
        "COOKIE_KEY": TEST_COOKIE_KEY,
        "COOKIE_NAME": COOKIE_NAME,
        "CONSOLE_SECRETS_DIR": str(tmp / "secrets"),  # nothing may be generated: both keys are given
        "OUTBOUND_ALLOW": "127.0.0.0/8",  # the fake CRM listens on 127.0.0.1
        "HTTP_CONNECT_TIMEOUT": "2",
        "HTTP_READ_TIMEOUT": "20",  # longer than SlowCRM.HOLD_SECONDS, short enough to bound a hang
        "HTTP_MAX_RETRIES": "0",
        "ENGINE_QUEUE_PATH": str(tmp / "tasks.sqlite3"),  # the test's own queue, not data/ of the checkout
    }
    for name in ("INTEGRATION_ENCRYPTION_KEYS", "INTEGRATION_ENCRYPTION_KEY_FILE", "CONSOLE_ENV"):
        env.pop(name, None)
    env.update(settings or {})
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    started: list[App] = []
    try:
        for name in ("A", "B"):
            port = free_port()
            log = tmp / f"streamlit-{name}.log"
            with log.open("w") as out:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    [
                        streamlit,
                        "run",
                        "app.py",
                        "--server.address=127.0.0.1",
                        f"--server.port={port}",
                        "--server.headless=true",
                        "--server.fileWatcherType=none",
                        "--browser.gatherUsageStats=false",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so the finalizer can end all of it
                )
            started.append(App(name, f"http://127.0.0.1:{port}", process, log))
        _wait_healthy(started, START_SECONDS)
        yield started[0], started[1]
    finally:
        for app in started:
            _stop(app)


@pytest.fixture(scope="module")
def browser():
    yield from launched_browser()


class SlowCRM:
    """A REST CRM on 127.0.0.1 whose health path answers only after a while.

    GET /slow waits until `release()` (HOLD_SECONDS at most), so the test, not a guessed delay, decides
    how long a check runs; GET /fast answers at once. Every request is recorded (path, Authorization).
    """

    HOLD_SECONDS = 15  # longer than the steps taken while it holds; shorter than HTTP_READ_TIMEOUT

    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []
        self.slow_started = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with crm._lock:
                    crm.requests.append((self.path, self.headers.get("Authorization")))
                if self.path.startswith("/slow"):
                    crm.slow_started.set()
                    crm._release.wait(crm.HOLD_SECONDS)
                body = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def release(self) -> None:
        """Let every waiting and future /slow request answer."""
        self._release.set()

    def hold(self) -> None:
        """Make the next /slow requests wait again."""
        self._release.clear()
        self.slow_started.clear()

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_crm():
    with SlowCRM() as crm:
        yield crm


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test item, so fixtures can keep evidence of a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
