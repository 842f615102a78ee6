"""Health check of 1,000 integrations over 50 local fake hosts that answer after 50 ms.

The fake hosts run in a process of their own (127.0.0.1 .. 127.0.0.50, tests/fakes/slow_hosts.py), so
they don't share the checker's interpreter. A worker process creates 1,000 Custom CRM integrations of a
`bench_health` user (20 per host, secrets encrypted as always), then times check-all runs on the task
engine (consumer threads in the worker process, as `manage.py integrations check-all` runs them) with
the default caps. The ideal is the number of rounds the caps allow times 50 ms:
max(ceil(1000 / concurrency), ceil(20 / per_host)) x 50 ms. The hosts count the requests each served
at once, which must never exceed the per-host cap. A missed target's line gives the process's CPU per
check against the wall time per check the ideal allows, then one more run under cProfile in every
consumer thread (bench/profile.py): the costliest functions and SQL per check.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.request

from bench.common import ROOT, BenchError, Figure, Options, Target, failed, run_worker, worker_main
from bench.profile import profiled

HOSTS = 50
PER_HOST = 20
DELAY = 0.05
NAME = "Health check of 1,000 integrations, 50 hosts"
USER = "bench_health"
LIMIT = 1.25
# A job's own frames and the consumer's loop hold all of a check's time: they explain nothing.
JOB_WRAPPERS = ("_database", "<lambda>", "_check_scheduled", "run", "_run", "execute", "process_task", "worker")


def figures(target: Target, options: Options) -> list[Figure]:
    try:
        with FakeHosts(HOSTS, DELAY) as urls:
            answer = run_worker(
                "bench.check_all",
                {"urls": urls, "repeats": max(4, options.repeats // 2), "profile": True},
                options.timeout,
                {**target.env, "OUTBOUND_ALLOW": "127.0.0.0/8", "HTTP_MAX_RETRIES": "0"},
            )
            stats = _host_stats(urls[0])
    except BenchError as exc:
        return [failed(NAME, target.database, LIMIT, str(exc))]
    return [_figure(target.database, answer, stats)]


def _figure(database: str, answer: dict, stats: dict) -> Figure:
    busiest = max(s["most_at_once"] for s in stats.values())
    served = sum(s["served"] for s in stats.values())
    cap = answer["per_host"]
    ideal = max(math.ceil(HOSTS * PER_HOST / answer["concurrency"]), math.ceil(PER_HOST / cap)) * DELAY
    wall = sorted(answer["seconds"])[len(answer["seconds"]) // 2]
    measured = (
        f"median {wall:.2f} s vs ideal {ideal:.2f} s (caps {answer['concurrency']} at once, {cap} per host); "
        f"most at once on one host {busiest}"
    )
    figure = Figure(NAME, database, measured, wall / ideal, LIMIT, details={**answer, "busiest": busiest})
    if figure.status == "MISSED":
        figure.note = cpu_note(answer, wall / (HOSTS * PER_HOST), ideal / (HOSTS * PER_HOST))
    if busiest > cap:
        figure.status, figure.note = "MISSED", f"the per-host cap {cap} was exceeded ({busiest})"
    if served != HOSTS * PER_HOST * answer["runs"] or answer["failing"]:
        figure.status, figure.note = "ERROR", f"{served} requests served, {answer['failing']} checks failed"
    return figure


def cpu_note(answer: dict, wall_per_check: float, ideal_per_check: float) -> str:
    """Where a check's time goes: the process's CPU per check against the wall time per check the caps
    allow (the checker is one interpreter: its threads share one core's worth of Python), then the profile."""
    parts = [
        f"CPU {answer['cpu_ms_per_check']:.1f} ms per check in one process, wall {wall_per_check * 1000:.1f} ms "
        f"per check (the ideal's {ideal_per_check * 1000:.2f} ms)"
    ]
    profile = answer.get("profile") or {}
    if profile.get("functions"):
        shown = ", ".join(profile["functions"])
        parts.append(f"profile (wall time in the checking threads per check, waits included): {shown}")
    if "statements_per_check" in profile:
        parts.append(f"{profile['statements_per_check']:.1f} SQL statements per check")
    if profile.get("sql"):
        parts.append(f"costliest SQL per check: {profile['sql']}")
    return "; ".join(parts)


class FakeHosts:
    """The 50 hosts in their own process; its stdin closing stops it."""

    def __init__(self, count: int, delay: float):
        self.command = [sys.executable, "-m", "tests.fakes.slow_hosts", str(count), str(delay * 1000)]

    def __enter__(self) -> list[str]:
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise BenchError("the fake hosts did not start")
        return json.loads(line)

    def __exit__(self, *_exc) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _host_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_stats", timeout=5) as response:
        return json.loads(response.read())


# ----- the worker process --------------------------------------------------------------------------


def measure(payload: dict) -> dict:
    import app_context
    from core.engine.consumer import start_embedded, stop_embedded
    from core.engine.runs import CheckRuns
    from core.integrations.checks import CheckAllScope

    context = app_context.build()
    actor = _fresh_user(context, payload["urls"])
    settings = context.settings
    tasks = context.tasks
    tasks.runs = CheckRuns(context.factory, context.integrations, None)  # repeated runs: no per-person limit

    def consumer():
        return start_embedded(tasks.huey, settings.check_concurrency, settings.engine_tick_seconds, periodic=False)

    def run_once():
        run_id = tasks.start_check_all(actor, CheckAllScope())
        deadline = time.monotonic() + 600
        while not (progress := tasks.progress(actor, run_id)).finished:
            if time.monotonic() > deadline:
                raise RuntimeError("the check-all run did not finish within 10 minutes")
            time.sleep(0.02)
        return progress

    try:
        running = consumer()
        try:
            run_once()  # warm-up: connections, imports, the database's caches
            seconds, failing, cpu = [], 0, 0.0
            for _ in range(payload["repeats"] - 1):
                started, cpu_started = time.perf_counter(), time.process_time()
                progress = run_once()
                seconds.append(time.perf_counter() - started)
                cpu += time.process_time() - cpu_started
                failing += progress.failed
        finally:
            stop_embedded(running)
        profile = _profiled_run(consumer, run_once) if payload.get("profile") else {}
    finally:
        _remove_user(context, actor)  # the shared dataset stays as generated for the other figures
    return {
        "seconds": seconds,
        "failing": failing,
        "cpu_ms_per_check": cpu * 1000 / max(1, progress.done * len(seconds)),
        "concurrency": settings.check_concurrency,
        "per_host": settings.check_per_host,
        "checked": progress.done,
        "runs": len(seconds) + 1 + bool(profile),  # the timed ones, the warm-up and the profiled one
        "profile": profile,
    }


def _profiled_run(consumer, run_once) -> dict:
    """One more run with every consumer thread under cProfile: per check, the project's costliest
    functions (thread time, so they add up across threads), the SQL statements and the costliest one."""
    from core.engine.consumer import stop_embedded

    with profiled(every_thread=True) as profile:
        running = consumer()
        try:
            checked = run_once().done
        finally:
            stop_embedded(running)  # its threads end, so their profilers stop recording
    per_check = max(1, checked)
    top = profile.top_functions(3, skip=JOB_WRAPPERS)
    answer = {
        "functions": [f"{where} {seconds * 1000 / per_check:.1f} ms" for where, seconds, _ in top],
        "statements_per_check": profile.statement_count() / per_check,
    }
    if sql := profile.top_statement():
        answer["sql"] = f"{sql[1] * 1000 / per_check:.2f} ms in {sql[2] / per_check:.1f} run(s): {sql[0]}"
    return answer


def _fresh_user(context, urls: list[str]):
    from sqlalchemy import delete, select

    from core.models import Integration, User

    with context.factory.begin() as session:
        user_id = session.scalar(select(User.id).where(User.username == "bench_health"))
        if user_id is not None:
            session.execute(delete(Integration).where(Integration.owner_id == user_id))
    if user_id is None:
        context.users.create(
            None, "bench_health", "Health bench", "health@bench.test", "bench-health-pw-1", "member", "ENTERPRISE"
        )
    actor = context.users.get_by_username("bench_health").actor()
    for index in range(HOSTS * PER_HOST):
        config = {
            "name": "Bench CRM",
            "apiEndpoint": urls[index % len(urls)],
            "authType": "BEARER",
            "healthPath": "/health",
            "token": f"bench-token-{index:05d}-abcdef",
        }
        context.integrations.create(actor, f"health {index}", "CUSTOM", config)
    return actor


def _remove_user(context, actor) -> None:
    """Its integrations, their audit events (a Core delete: the app itself never deletes audit rows) and it;
    then the statistics ledgers folded, as the engine's scheduler does (none runs here): each of its writes
    appended ledger rows, which the next run's pages would read (Statistics at 1m grew 1.44x to 1.69x)."""
    from sqlalchemy import delete, or_, select

    from core.integrations import ledgers
    from core.models import AuditEvent, CheckRun, CheckRunItem, Integration, User

    with context.factory.begin() as session:
        ids = select(Integration.id).where(Integration.owner_id == actor.id).scalar_subquery()
        session.execute(
            delete(AuditEvent).where(or_(AuditEvent.actor_id == actor.id, AuditEvent.integration_id.in_(ids)))
        )
        session.execute(delete(CheckRunItem).where(CheckRunItem.integration_id.in_(ids)))
        session.execute(delete(CheckRun).where(CheckRun.actor_id == actor.id))
        session.execute(delete(Integration).where(Integration.owner_id == actor.id))
        session.execute(delete(User).where(User.id == actor.id))
    with context.engine.begin() as connection:
        ledgers.compact(connection)


if __name__ == "__main__":
    worker_main(measure)
