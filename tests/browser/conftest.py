"""A real `streamlit run` of the app and Debian's chromium driven by playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.chromium import launched_browser

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"streamlit did not answer on {url} within {seconds} s")


@pytest.fixture
def browser():
    yield from launched_browser()


def started_app(tmp_path: Path, public: bool = False, extra_env: dict[str, str] | None = None):
    """A generator of the running app's facts (a fixture's body): `streamlit run app.py` as `make run`
    starts it, on a fresh SQLite database, on a free loopback port; ``public`` sets PUBLIC_BASE_URL to
    that address (the greeting bot's receiver and connect links need one)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
        "CONSOLE_SECRETS_DIR": str(tmp_path / "secrets"),
        "HTTP_MAX_RETRIES": "0",
        "OUTBOUND_ALLOW": "127.0.0.0/8,::1",  # the fake Chatwoot listens on 127.0.0.1
        **({"PUBLIC_BASE_URL": url} if public else {}),
        **(extra_env or {}),
    }
    for name in ("INTEGRATION_ENCRYPTION_KEY", "COOKIE_KEY"):
        env.pop(name, None)  # the first start generates both, as on a new machine
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [streamlit, "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # A loaded machine (several suites at once on 2 cores) can take minutes to start Streamlit.
        wait_until_healthy(url, process, float(os.environ.get("BROWSER_START_SECONDS", "60")))
        yield {"url": url, "env": env, "log": tmp_path / "streamlit.log", "tmp": tmp_path}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def app_server(tmp_path):
    """The app as `make run` starts it, on a fresh SQLite database, on a free loopback port."""
    yield from started_app(tmp_path)
