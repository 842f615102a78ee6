"""App start: `streamlit run` as `make run` starts it, until the page has rendered in headless Chromium.

The app (app.py: Home.py and its routes, against the target database, signed in as bench_member by a
session cookie set in the browser beforehand) is timed from process spawn until its Integrations page
shows the title and the table of integrations; a hello-world app (st.write("Hello")) is started the same
way (same flags, same working directory and .streamlit/config.toml, a free loopback port) and timed
until "Hello" shows. A third app, a title and a 50-row table (st.dataframe) and nothing else, is timed
until its table shows: the floor of any page with a table (pandas, pyarrow and the browser's table
component), printed beside the figure, not part of its ratio.
The three alternate, after one warm-up start each (not counted); the ratio is of the medians. When the
target is missed, the line gives `python -X importtime`'s costliest imports of what the first page
imports (app.py, Home.py and the Integrations page), beyond what Streamlit itself imports.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from bench.common import DATA_DIR, ROOT, BenchError, Figure, Options, Target, failed, median, skipped
from bench.generate import MEMBER
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

NAME = "App start until the Integrations page shows"
LIMIT = 1.5
FIRST_PAGE = ("app.py", "Home.py", "app_pages/integrations.py")  # what is imported before it shows
IMPORTS_SHOWN = 5
HELLO_SCRIPT = 'import streamlit as st\n\nst.write("Hello")\n'
TABLE_SCRIPT = """import streamlit as st

st.title("Integrations")
st.dataframe([{"id": n, "name": f"Integration {n}", "status": "connected"} for n in range(50)])
"""
START_TIMEOUT = 120  # seconds one start may take
POLL = 0.01  # seconds between attempts to connect to the new server


def figures(target: Target, options: Options) -> list[Figure]:
    if not Path(CHROMIUM).exists():
        return [skipped(NAME, target.database, LIMIT, f"{CHROMIUM} is not installed (apt-get install -y chromium)")]
    try:
        hello, table, app = measure(target, options)
    except Exception as exc:
        return [failed(NAME, target.database, LIMIT, f"{type(exc).__name__}: {exc}")]
    measured = f"median {median(app):.2f} s vs hello {median(hello):.2f} s ({len(app)} starts each)"
    measured += f"; a minimal app with one table: {median(table):.2f} s ({median(table) / median(hello):.2f}x hello)"
    details = {"app_s": app, "hello_s": hello, "table_s": table}
    figure = Figure(NAME, target.database, measured, median(app) / median(hello), LIMIT, details=details)
    if figure.status == "MISSED":
        try:
            figure.note = "profile: " + import_profile(target)
        except Exception as exc:
            figure.note = f"no import profile ({type(exc).__name__}: {exc})"
    return [figure]


def first_page_modules() -> list[str]:
    """The top-level modules the first page's files import (absolute imports only), in file order."""
    modules: list[str] = []
    for name in FIRST_PAGE:
        tree = ast.parse((ROOT / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
                package = ROOT / node.module.replace(".", "/")
                modules += [f"{node.module}.{a.name}" for a in node.names if (package / f"{a.name}.py").is_file()]
    return list(dict.fromkeys(m for m in modules if m != "__future__"))


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
MARK = "BENCH-IMPORTS-START"


def import_profile(target: Target) -> str:
    """The costliest imports (cumulative) of the first page's modules after `import streamlit`."""
    code = f"import streamlit, sys\nsys.stderr.write('{MARK}\\n')\n"
    code += "".join(f"import {module}\n" for module in first_page_modules())
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env={**os.environ, **target.env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.split(MARK, 1)[-1].splitlines()
    parsed = [(int(m[2]), len(m[3]), m[4]) for line in lines if (m := IMPORT_LINE.match(line))]
    total = sum(us for us, depth, _ in parsed if depth == 0)  # what the page's own imports cost in all
    top = sorted(((us, name) for us, depth, name in parsed if depth <= 2), reverse=True)[:IMPORTS_SHOWN]
    shown = ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in top)
    what = "python -X importtime, costliest imports beyond streamlit's (cumulative)"
    return f"{what}: {shown}; {total / 1000:.0f} ms in all"


def measure(target: Target, options: Options) -> tuple[list[float], list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    hello_script = write_hello_script()
    table_script = write_script("table_app", "table.py", TABLE_SCRIPT)
    env = {**os.environ, **target.env}
    with member_session(target) as cookie, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            starts = {
                "hello": partial(time_start, browser, hello_script, env, None, "", hello_rendered),
                "table": partial(time_start, browser, table_script, env, None, "", table_rendered),
                "app": partial(time_start, browser, ROOT / "app.py", env, cookie, "integrations", app_rendered),
            }
            for start in starts.values():  # warm-up: the file system cache, Chromium's first page
                start()
            timings: dict[str, list[float]] = {name: [] for name in starts}
            for _ in range(options.starts):
                for name, start in starts.items():
                    timings[name].append(start())
        finally:
            browser.close()
    return timings["hello"], timings["table"], timings["app"]


def write_hello_script() -> Path:
    return write_script("hello_app", "hello.py", HELLO_SCRIPT)


def write_script(folder: str, name: str, text: str) -> Path:
    path = DATA_DIR / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@contextmanager
def member_session(target: Target, username: str = MEMBER):
    """(cookie name, token of a live sign-in session of `username`), as ui.auth reads them; revoked after."""
    import app_context
    from core.settings import load_settings

    ctx = app_context.build(load_settings(target.env), migrate=False)
    token = ctx.sessions.start(ctx.users.get_by_username(username).id, 1)
    try:
        yield ctx.settings.cookie_name, token
    finally:
        ctx.sessions.revoke(token)
        ctx.engine.dispose()


def hello_rendered(page) -> None:
    page.get_by_text("Hello", exact=True).wait_for(state="visible", timeout=START_TIMEOUT * 1000)


def table_rendered(page) -> None:
    page.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible", timeout=START_TIMEOUT * 1000)


def app_rendered(page) -> None:
    page.get_by_role("heading", name="Integrations", exact=True).wait_for(timeout=START_TIMEOUT * 1000)
    table_rendered(page)
    if page.get_by_text("User name", exact=True).count():
        raise BenchError("the app shows the sign-in form: the session cookie was not accepted")


def time_start(
    browser, script: Path, env: dict, cookie: tuple[str, str] | None, path: str, rendered: Callable
) -> float:
    """Seconds from spawning `streamlit run script` until `rendered(page)` returns for http://…/path."""
    port = free_port()
    context = browser.new_context()
    if cookie:
        context.add_cookies([{"name": cookie[0], "value": cookie[1], "domain": "127.0.0.1", "path": "/"}])
    page = context.new_page()
    try:
        started = time.perf_counter()
        with streamlit_process(script, port, env):
            wait_for_port(port, started + START_TIMEOUT)
            page.goto(f"http://127.0.0.1:{port}/{path}", timeout=START_TIMEOUT * 1000)
            rendered(page)
            return time.perf_counter() - started
    finally:
        context.close()


@contextmanager
def streamlit_process(script: Path, port: int, env: dict):
    """`streamlit run` with the Makefile's run flags on a loopback port; stopped (by its own pid) after."""
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    command = [streamlit, "run", str(script), "--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log = (DATA_DIR / "streamlit-start.log").open("a")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, deadline: float) -> None:
    while time.perf_counter() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL)
    raise BenchError(f"nothing listened on 127.0.0.1:{port} within {START_TIMEOUT} s")
