"""The profile line that explains a missed target: the project's function with the most cumulative time
(cProfile) and the SQL statement that cost the most (SQLAlchemy's cursor events), over one render or one
run of checks.

AppTest runs a page's script in a thread of its own, and cProfile only sees the thread that enables it,
so the profiler is enabled from inside the first thread started while profiling (threading.setprofile);
with every_thread, each thread started meanwhile (a consumer's workers) gets a profiler, merged after.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT

SQL_SHOWN = 220  # characters of a statement shown
# The files that always hold the whole render (the page and Home.py) and the bench's own say nothing.
NOT_EXPLAINING = ("Home.py", "app.py", "app_pages/", "bench/", ".venv/")


@dataclass
class Profile:
    profilers: list[cProfile.Profile] = field(default_factory=list)
    statements: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    seconds: float = 0.0

    def stats(self) -> dict | None:
        """pstats' table of every profiler merged, or None when nothing was recorded."""
        recorded = [p for p in self.profilers if p.getstats()]
        if not recorded:
            return None
        merged = pstats.Stats(recorded[0])
        for profiler in recorded[1:]:
            merged.add(profiler)
        return merged.stats  # type: ignore[attr-defined]

    def top_functions(self, count: int = 1, skip: tuple[str, ...] = ()) -> list[tuple[str, float, int]]:
        """(file:line function, cumulative seconds, calls) of the costliest functions in the project,
        leaving out those named in `skip` (wrappers that hold all of a job's time)."""
        found = []
        for (filename, line, function), (_cc, calls, _tt, cumulative, _callers) in (self.stats() or {}).items():
            where = project_path(filename)
            if where is None or where.startswith(NOT_EXPLAINING) or function in skip:
                continue
            found.append((f"{where}:{line} {function}", cumulative, calls))
        return sorted(found, key=lambda item: -item[1])[:count]

    def top_function(self) -> tuple[str, float, int] | None:
        top = self.top_functions()
        return top[0] if top else None

    def top_statement(self) -> tuple[str, float, int] | None:
        if not self.statements:
            return None
        statement, times = max(self.statements.items(), key=lambda item: sum(item[1]))
        return " ".join(statement.split())[:SQL_SHOWN], sum(times), len(times)

    def statement_count(self) -> int:
        return sum(len(times) for times in self.statements.values())

    def summary(self) -> dict:
        answer: dict = {"render_ms": round(self.seconds * 1000, 1), "statements": self.statement_count()}
        if top := self.top_function():
            answer["function"] = f"{top[0]} {top[1] * 1000:.0f} ms cumulative ({top[2]} calls)"
        if sql := self.top_statement():
            answer["sql"] = f"{sql[1] * 1000:.0f} ms in {sql[2]} run(s): {sql[0]}"
        return answer


def project_path(filename: str) -> str | None:
    """The path relative to the repository, or None for a file outside it (or a built-in: "~")."""
    if not filename.startswith("/"):
        return None
    try:
        return str(Path(filename).resolve().relative_to(ROOT))
    except ValueError:
        return None


@contextmanager
def profiled(every_thread: bool = False):
    """Profile what runs inside: the first thread started meanwhile (AppTest's script thread), or with
    every_thread each thread started meanwhile (a consumer's workers); never the calling thread."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    profile = Profile()
    enabled = threading.Event()
    lock = threading.Lock()

    def start_in_thread(*_args):
        sys.setprofile(None)
        if every_thread or not enabled.is_set():
            enabled.set()
            profiler = cProfile.Profile()
            with lock:
                profile.profilers.append(profiler)
            profiler.enable()

    def before(conn, _cursor, _statement, _parameters, _context, _many):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn, _cursor, statement, _parameters, _context, _many):
        started = conn.info.get("bench_started")
        if started:
            profile.statements[statement].append(time.perf_counter() - started.pop())

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    threading.setprofile(start_in_thread)
    started = time.perf_counter()
    try:
        yield profile
    finally:
        profile.seconds = time.perf_counter() - started
        threading.setprofile(None)  # type: ignore[arg-type]
        with lock:
            enabled.set()
            running = list(profile.profilers)
        # A thread's profiler that is still enabled keeps recording; disabling from here stops only this
        # thread's, so the other threads should have ended (or stopped their work) before this exits.
        for profiler in running:
            profiler.disable()
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)
