"""The app's start (`streamlit run app.py`): app.py is imported before the server answers, so declaring
the server's routes loads none of the console's machinery; the engine then starts beside the server, and
a page's session and the console's routes wait for that start (start_gate.py) while the page's files do not.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from start_gate import AfterEngineStart

ROOT = Path(__file__).resolve().parents[2]
# What the services need and declaring the routes does not; each costs a noticeable part of a start.
LOADED_LATER = ("app_context", "ui.state", "core.models", "sqlalchemy", "huey", "requests", "authlib", "pandas")


def test_importing_the_app_loads_none_of_the_services():
    code = "import sys\nimport app\nprint('\\n'.join(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"app", "routes", "bot_routes", "connect_routes"} <= loaded  # the routes were declared
    assert not loaded & set(LOADED_LATER), f"importing app.py loaded {sorted(loaded & set(LOADED_LATER))}"


def _scope(kind: str, path: str, method: str = "GET") -> dict:
    scope = {"type": kind, "path": path, "root_path": "", "query_string": b"", "headers": []}
    return scope | ({"method": method} if kind == "http" else {})


def test_a_page_session_and_a_console_route_wait_for_the_engine_start_and_the_page_files_do_not():
    async def scenario() -> tuple[list[str], list[str]]:
        started, served = asyncio.Event(), []

        async def server(scope, receive, send):
            served.append(f"{scope['type']} {scope['path']}")

        console_route = Route("/auth/session", lambda request: PlainTextResponse(""), methods=["POST"])
        gate = AfterEngineStart(server, started, [console_route])
        scopes = [
            _scope("websocket", "/_stcore/stream"),
            _scope("http", "/auth/session", "POST"),
            _scope("http", "/static/js/index.js"),
            _scope("http", "/_stcore/health"),
            _scope("http", "/integrations"),
        ]
        calls = [asyncio.create_task(gate(scope, None, None)) for scope in scopes]
        for _ in range(10):  # every call that does not wait has run to its end
            await asyncio.sleep(0)
        before = list(served)
        started.set()
        await asyncio.wait_for(asyncio.gather(*calls), timeout=5)
        return before, served

    before, after = asyncio.run(scenario())
    assert before == ["http /static/js/index.js", "http /_stcore/health", "http /integrations"]
    assert after[3:] == ["websocket /_stcore/stream", "http /auth/session"]
