"""app.py is imported before the server answers (`streamlit run app.py`), so declaring the server's routes
must load none of the console's machinery: the services, the database layer, the task engine and HTTP
load later (the engine's start, the first page, the first request to a route; route_services.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
