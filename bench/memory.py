"""Peak memory of the app process rendering a page, against the app process rendering its empty page
(Home.py signed in, with everything but the page's body; bench.apptest.empty_body), and, for reference,
a process rendering a bare hello script.

Each render runs in a fresh worker process (AppTest; the script runs in a thread of that process), which
answers with its peak resident set size (the kernel's VmHWM of that process) after the render, and
for an app page also the peak before the render began (Python, Streamlit, the app's services, the
database connection and the table and chart libraries loaded), which splits the difference into loading
the app and what rendering the page over its data costs.
The figure is the median peak of the page's processes minus the median peak of the empty page's: both
have loaded the app and the table libraries, so the difference is what rendering the page costs.
"""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass

from bench.common import ROOT, Figure, Options, Target, failed, median, run_worker, skipped, worker_main
from bench.generate import ADMIN

LIMIT_MB = 50.0
# Loaded before an app page renders, so that "app loaded" counts them and the rest is the page's own:
# Streamlit imports them on the first table or chart, whatever the data.
LIBRARIES = ("pandas", "pyarrow", "altair")


@dataclass(frozen=True)
class MemoryCase:
    name: str
    username: str
    page: str


CASES = (
    MemoryCase("Peak memory, statistics page, admin, all", ADMIN, "app_pages/statistics.py"),
    # Not a target of the issue: the admin's Integrations page lists every integration.
    MemoryCase("Peak memory, Integrations page, admin, all", ADMIN, "app_pages/integrations.py"),
)


EMPTY = {"kind": "empty", "username": ADMIN, "page": "app_pages/overview.py"}


def figures(target: Target, options: Options) -> list[Figure]:
    try:
        hello = [peak(target, options, {"kind": "hello"}) for _ in range(options.processes)]
        empty = [peak(target, options, EMPTY) for _ in range(options.processes)]
    except Exception as exc:
        return [failed(case.name, target.database, LIMIT_MB, f"baseline: {exc}", "MB") for case in CASES]
    return [case_figure(case, target, options, hello, empty) for case in CASES]


def peak(target: Target, options: Options, payload: dict) -> dict:
    return run_worker("bench.memory", payload, options.timeout, target.env)


def case_figure(case: MemoryCase, target: Target, options: Options, hello: list[dict], empty: list[dict]) -> Figure:
    if not (ROOT / case.page).is_file():
        return skipped(case.name, target.database, LIMIT_MB, f"{case.page} does not exist yet", "MB")
    payload = {"kind": "page", "username": case.username, "page": case.page}
    try:
        runs = [peak(target, options, payload) for _ in range(options.processes)]
    except Exception as exc:
        return failed(case.name, target.database, LIMIT_MB, str(exc), "MB")
    page_mb, hello_mb = median([r["peak_mb"] for r in runs]), median([h["peak_mb"] for h in hello])
    empty_mb, seconds = median([e["peak_mb"] for e in empty]), median([r["seconds"] for r in runs])
    measured = (
        f"peak {page_mb:.0f} MB vs {empty_mb:.0f} MB rendering the app's empty page (render {seconds:.1f} s); "
        f"a bare hello script's process: {hello_mb:.0f} MB"
    )
    details = {"page_mb": page_mb, "empty_mb": empty_mb, "hello_mb": hello_mb, "render_s": seconds}
    return Figure(case.name, target.database, measured, page_mb - empty_mb, LIMIT_MB, "MB", details=details)


# ----- the worker process ---------------------------------------------------------------------------


def peak_mb() -> float:
    """This process's own peak (VmHWM). Not getrusage's ru_maxrss: Linux keeps that across fork and exec,
    so a fresh worker reported the bench process's own peak (595 MB for every case after it had generated
    a million-integration dataset), not its own."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: the best there is


def measure(payload: dict) -> dict:
    import importlib
    import time

    from bench.apptest import checked, empty_body, hello_app, on_page, signed_in, start_session

    if payload["kind"] == "hello":
        hello_app()
        return {"peak_mb": peak_mb()}

    import app_context
    from core.settings import load_settings

    ctx = app_context.build(load_settings(), migrate=False)
    token = start_session(ctx, payload["username"])
    at = signed_in(payload["username"], token, payload["page"])
    for library in LIBRARIES:
        importlib.import_module(library)
    loaded = peak_mb()
    try:
        with empty_body() if payload["kind"] == "empty" else contextlib.nullcontext():
            started = time.perf_counter()
            at.run()
            seconds = time.perf_counter() - started
        on_page(checked(at, payload["page"]), payload["page"])
    finally:
        ctx.sessions.revoke(token)
    return {"peak_mb": peak_mb(), "loaded_mb": loaded, "seconds": seconds}


if __name__ == "__main__":
    worker_main(measure)
