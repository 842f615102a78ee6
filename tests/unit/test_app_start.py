"""The app's start (`streamlit run app.py`): app.py is imported before the server answers, so declaring
the server's routes loads none of the console's machinery. The server then imports what the first page
needs while the browser loads the page's files, and the task engine's machinery once a first page has been
drawn; a page's session and the console's routes wait while either import runs (start_gate.py), the page's
files do not. The services are built on first use (app_context.py), so the first page loads no engine.
"""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from starlette.responses import PlainTextResponse
from starlette.routing import Route

import start_gate
from start_gate import ImportGate

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


def test_a_page_session_and_a_console_route_wait_while_the_server_imports_and_the_page_files_do_not():
    async def scenario() -> tuple[list[str], list[str]]:
        started, served = asyncio.Event(), []

        async def server(scope, receive, send):
            served.append(f"{scope['type']} {scope['path']}")

        console_route = Route("/auth/session", lambda request: PlainTextResponse(""), methods=["POST"])
        gate = ImportGate(server, started, [console_route])
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


def test_the_engine_waits_for_a_first_page_and_starts_anyway_when_nobody_opens_one(monkeypatch):
    monkeypatch.setattr(start_gate, "_first_page", start_gate.threading.Event())

    async def waited(timeout: float) -> bool:  # True when first_page_shown returned before `timeout`
        try:
            await asyncio.wait_for(start_gate.first_page_shown(timeout=timeout), timeout=timeout + 5)
        except TimeoutError:
            return False
        return True

    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await waited(0.2)  # nobody opened a page: it returns after its wait
        alone = loop.time() - began
        loop.call_later(0.1, start_gate.page_shown)
        began = loop.time()
        assert await waited(30)
        return alone, loop.time() - began

    alone, after_page = asyncio.run(scenario())
    assert 0.15 <= alone < 5
    assert after_page < 5  # the page, not the 30 s, ended the wait


def _ui_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "ui":
            names |= {f"ui.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ui."):
            names.add(node.module)
    return names


def test_what_the_server_imports_ahead_covers_the_first_pages_own_imports():
    import app

    first = {"Home.py", "app_pages/overview.py", "app_pages/integrations.py"}
    wanted = set().union(*(_ui_imports(ROOT / name) for name in first))
    assert wanted and wanted <= set(app.FIRST_PAGE), sorted(wanted - set(app.FIRST_PAGE))


ENGINE_MODULES = ("huey", "redis", "core.engine.tasks", "core.alerts.channels", "core.templates.service")


def test_the_first_pages_services_load_no_engine_and_the_engine_registers_every_job(tmp_path):
    """What Home.py and the Integrations page ask of the context, then the engine a consumer starts."""
    code = f"""
import sys
import app_context
from tests.conftest import make_settings
ctx = app_context.build(make_settings("sqlite:///{tmp_path / "start.db"}"), migrate=True)
ctx.users.count(), ctx.sessions, ctx.limiter, ctx.integrations, ctx.runs, ctx.scheduler.heartbeat(), ctx.links
print(" ".join(m for m in {ENGINE_MODULES!r} if m in sys.modules))
print("---")
print(" ".join(sorted(name.rsplit(".", 1)[-1] for name in ctx.tasks.huey._registry._registry)))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENGINE_QUEUE_PATH": str(tmp_path / "queue.db")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded, registered = done.stdout.split("---")
    assert loaded.split() == [], f"the first page's services loaded {loaded.split()}"
    jobs = set(registered.split())
    assert {"check_scheduled", "check_run_item", "sync_run", "engine_tick", "template_run"} <= jobs, jobs
    from core.chatwoot.bot_events import TASK_NAME as BOT_TASK

    assert BOT_TASK in jobs
