"""Scaling out: 10,000 scheduled checks on 500 local fake hosts answering after 50 ms, run by 1, 2 and 4
`manage.py worker` processes (4 threads each) sharing a Redis queue and a PostgreSQL database.

The database is a schema `workers` of the bench's PostgreSQL database, made for this benchmark alone (a
user and 10,000 Custom CRM integrations, 20 per host, each token encrypted for its own id), so the
scheduler has nothing else to plan. The hosts (tests/fakes/slow_hosts.py) run in a process of their own
and count the requests served at once, per host and over all of them. For each number of workers: every
check's state is reset, the workers start and one of them becomes the scheduler; then every integration
is made due at once (the clock starts) and the bench waits until the database holds 10,000 checks.

Figures: the wall time against the ideal the caps allow, max(ceil(checks / min(16, threads)),
ceil(20 / 2)) x 50 ms, with threads = 4 x workers and the default caps (CHECK_CONCURRENCY 16 over every
worker, CHECK_PER_HOST 2); the throughput with N workers against N x one worker's (up to the caps); and
for every run, that neither cap was ever exceeded and every integration was checked exactly once. The
check interval is a day, so none comes due twice. When a target is missed, the line gives the workers'
CPU time per check and the machine's load: what the wall time was spent on.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import DATA_DIR, ROOT, BenchError, Figure, Options, failed, skipped

HOSTS = 500
DELAY = 0.05
THREADS = 4  # per worker process: 4 workers x 4 threads = the global cap
WORKER_COUNTS = (1, 2, 4)
CONCURRENCY, PER_HOST = 16, 2  # the defaults, given explicitly
WALL_LIMIT, SCALING_LIMIT = 1.15, 0.9
SCHEMA = "workers"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
USER = "bench_workers"
START_WAIT = 90  # seconds for the workers to start and one to become the scheduler
POLL = 0.25
PROFILED_CHECKS = 200  # checks of the profiled round run when a target is missed
WRAPPERS = ("_database", "<lambda>", "_check_scheduled")  # a job's own frames: they hold all of its time


@dataclass(frozen=True)
class Round:
    workers: int
    seconds: float
    checks: int
    distinct: int
    served: int
    most_at_once: int
    busiest_host: int
    cpu_seconds: float
    load: float

    @property
    def threads(self) -> int:
        return self.workers * THREADS

    def ideal(self, total: int) -> float:
        per_host = math.ceil(total / HOSTS)
        return max(math.ceil(total / min(CONCURRENCY, self.threads)), math.ceil(per_host / PER_HOST)) * DELAY

    def problems(self, total: int) -> list[str]:
        found = []
        if self.most_at_once > CONCURRENCY:
            found.append(f"the global cap {CONCURRENCY} was exceeded ({self.most_at_once} at once)")
        if self.busiest_host > PER_HOST:
            found.append(f"the per-host cap {PER_HOST} was exceeded ({self.busiest_host} at once on one host)")
        if not (self.checks == self.distinct == self.served == total):
            found.append(
                f"not every check ran exactly once: {self.checks} checks recorded for {self.distinct} "
                f"integrations, {self.served} requests served, of {total}"
            )
        return found


def figures(_target, options: Options) -> list[Figure]:
    names = [wall_name(n, options.checks) for n in WORKER_COUNTS] + [scaling_name(n) for n in WORKER_COUNTS[1:]]
    if problem := missing_servers():
        return [skipped(name, "PostgreSQL", None, problem) for name in names]
    try:
        rounds = measure(options.checks, options.timeout)
    except Exception as exc:
        return [failed(name, "PostgreSQL", None, f"{type(exc).__name__}: {exc}") for name in names]
    result = round_figures(rounds, options.checks)
    if any(f.status == "MISSED" for f in result):
        try:
            line = profile_line(min(PROFILED_CHECKS, options.checks), options.timeout)
        except Exception as exc:
            line = f"no profile ({type(exc).__name__}: {exc})"
        for figure in result:
            if figure.status == "MISSED":
                figure.note = f"{figure.note}; {line}" if figure.note else line
    return result


def wall_name(workers: int, total: int) -> str:
    return f"Workers: {total:,} scheduled checks, {workers} worker{'s' if workers > 1 else ''}"


def scaling_name(workers: int) -> str:
    return f"Workers: throughput of {workers} vs {workers} x one"


def round_figures(rounds: list[Round], total: int) -> list[Figure]:
    result = []
    for r in rounds:
        ideal = r.ideal(total)
        measured = (
            f"{r.seconds:.1f} s vs ideal {ideal:.2f} s ({r.threads} threads, caps {CONCURRENCY}/{PER_HOST}); "
            f"most at once {r.most_at_once}, on one host {r.busiest_host}"
        )
        figure = Figure(wall_name(r.workers, total), "PostgreSQL", measured, r.seconds / ideal, WALL_LIMIT)
        figure.details = {**r.__dict__, "ideal_s": ideal}
        if problems := r.problems(total):
            figure.status, figure.note = "MISSED", "; ".join(problems)
        elif figure.status == "MISSED":
            figure.note = cpu_note(r, total)
        result.append(figure)
    one = rounds[0]
    for r in rounds[1:]:
        expected = min(r.workers, CONCURRENCY / THREADS)
        throughput, single = total / r.seconds, total / one.seconds
        figure = Figure(
            scaling_name(r.workers),
            "PostgreSQL",
            f"{throughput:.0f} checks/s vs {expected:g} x {single:.0f} checks/s",
            throughput / (expected * single),
            SCALING_LIMIT,
            at_least=True,
        )
        if figure.status == "MISSED":
            figure.note = cpu_note(r, total)
        result.append(figure)
    return result


def profile_line(total: int, timeout: float) -> str:
    """One worker with cProfile in every thread (bench/profiled_worker.py) over `total` checks: where a
    check's time goes, per check, in the project and in the libraries."""
    from core import db

    out = DATA_DIR / "worker-profile.json"
    out.unlink(missing_ok=True)
    with fake_hosts(HOSTS, DELAY) as hosts:
        place = prepare(total, hosts.urls)
        engine = db.make_engine(place.url)
        try:
            one_round(engine, place, hosts, 1, total, timeout, profile_to=out)
        finally:
            from core.engine.queue import make_huey

            make_huey(REDIS_URL, "", place.queue).flush()
            engine.dispose()
    if not out.is_file():
        return "no profile (the profiled worker wrote none)"
    top = json.loads(out.read_text())
    project = [(w, s, n) for w, s, n in top["project"] if w.rsplit(" ", 1)[-1] not in WRAPPERS][:3]
    shown = ", ".join(f"{w} {s / total * 1000:.0f} ms" for w, s, _ in project)
    library = top["libraries"][0] if top["libraries"] else None
    if library:
        shown += f"; {library[0]} {library[1] / total * 1000:.0f} ms in {library[2] / total:.0f} calls"
    return f"profile ({total} checks, 1 worker, thread time per check): {shown}"


def cpu_note(r: Round, total: int) -> str:
    """What the time went on: the workers' CPU per check, against what 2 cores under this load give."""
    per_check = r.cpu_seconds / max(1, r.checks) * 1000
    cores = os.cpu_count() or 1
    return (
        f"the workers used {r.cpu_seconds:.1f} CPU-s ({per_check:.1f} ms per check) in {r.seconds:.1f} s; "
        f"load average {r.load:.1f} on {cores} cores"
    )


def missing_servers() -> str | None:
    from bench import databases

    if problem := databases.postgres_problem():
        return problem
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"no Redis answers at {REDIS_URL} ({type(exc).__name__}): the workers cannot share a queue"
    return None


# ----- the set-up ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    url: str
    env: dict[str, str]  # for a worker process
    queue: str


def prepare(total: int, urls: list[str], schema: str = SCHEMA) -> Place:
    """A schema holding only the benchmark's user and its `total` integrations, spread over the hosts."""
    from bench import databases, generate

    keys = databases.bench_keys()
    url = databases.postgres_url(schema)
    generate.reset_database(url)
    queue = f"bench-workers-{secrets.token_hex(4)}"
    env = {
        **databases.app_env(url, keys),
        "REDIS_URL": REDIS_URL,
        "ENGINE_QUEUE_NAME": queue,
        "ENGINE_TICK_SECONDS": "1",
        "CHECK_CONCURRENCY": str(CONCURRENCY),
        "CHECK_PER_HOST": str(PER_HOST),
        "CHECK_INTERVAL_SECONDS": "86400",
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "HTTP_MAX_RETRIES": "0",
        "PYTHONUNBUFFERED": "1",
    }
    add_integrations(url, keys["encryption"], total, urls)
    return Place(url, env, queue)


def add_integrations(url: str, key: str, total: int, urls: list[str]) -> None:
    """A user and `total` Custom CRM integrations, host after host (consecutive ids on different hosts),
    not due for 30 days until a round makes them due."""
    from sqlalchemy import insert

    from bench.generate import insert_all, seal
    from core import db, fields
    from core.crypto import FieldCipher
    from core.models import Integration, User, utcnow
    from providers import CATALOG

    provider = CATALOG.get("CUSTOM")
    cipher = FieldCipher([key])
    now = utcnow()

    def rows():
        for index in range(total):
            config = {
                "name": "Bench CRM",
                "apiEndpoint": urls[index % len(urls)],
                "authType": "BEARER",
                "healthPath": "/health",
                "token": f"bench-token-{index:06d}-{secrets.token_hex(8)}",
            }
            config = fields.normalise(provider.fields, config)
            seal(provider, config, index + 1, cipher)
            yield {
                "id": index + 1,
                "owner_id": 1,
                "name": f"workers {index}",
                "type": provider.category,
                "provider": provider.key,
                "configuration": config,
                "is_active": True,
                "status": "unknown",
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "next_check_at": now + timedelta(days=30),
            }

    engine = db.make_engine(url)
    try:
        verify_key(engine, cipher)
        with engine.begin() as conn:
            user = {"id": 1, "username": USER, "name": "Workers bench", "email": "workers@bench.test"}
            user |= {"password_hash": "!", "role": "member", "tier": "ENTERPRISE", "active": True, "created_at": now}
            conn.execute(insert(User), [user])
            insert_all(conn, Integration.__table__, rows(), 5_000)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('integrations', 'id'), {int(total)})")
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('users', 'id'), 1)")
    finally:
        engine.dispose()


def verify_key(engine, cipher) -> None:
    from core import db
    from core.keys import verify_key as verify

    verify(db.make_session_factory(engine), cipher)


def reset_round(engine, queue: str) -> None:
    """Every check of the last round forgotten, nothing due, no lease held, the queue empty, every
    integration healthy."""
    from sqlalchemy import delete, update

    from core.engine.queue import make_huey
    from core.models import AuditEvent, CheckRecord, EngineLease, HealthChange, Integration, utcnow

    with engine.begin() as conn:
        conn.execute(delete(CheckRecord))
        conn.execute(delete(HealthChange))
        conn.execute(delete(AuditEvent))
        conn.execute(delete(EngineLease))
        conn.execute(
            update(Integration).values(
                next_check_at=utcnow() + timedelta(days=30),
                planned_until=None,
                check_lease_until=None,
                check_lease_holder=None,
                check_lease_host=None,
                # Healthy already, as a running installation's are: a check that changes an integration's
                # health also plans alerts, which is not what this measures.
                last_checked_at=utcnow() - timedelta(days=1),
                status="connected",
                health="connected",
                health_changed_at=utcnow() - timedelta(days=7),
                failures_in_row=0,
                successes_in_row=10,
            )
        )
    make_huey(REDIS_URL, "", queue).flush()


# ----- the fake hosts and the workers ---------------------------------------------------------------


class FakeHosts:
    """The hosts in their own process; closing its stdin stops it."""

    def __init__(self, count: int, delay: float):
        command = [sys.executable, "-m", "tests.fakes.slow_hosts", str(count), str(delay * 1000)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise BenchError("the fake hosts did not start")
        self.urls: list[str] = json.loads(line)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.urls[0]}{path}", timeout=10) as response:
            return json.loads(response.read())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def fake_hosts(count: int, delay: float):
    hosts = FakeHosts(count, delay)
    try:
        yield hosts
    finally:
        hosts.close()


class WorkerProcess:
    """One `manage.py worker --workers N`, its output in a log file; stopped by its own pid."""

    def __init__(self, env: dict[str, str], log: Path, threads: int, profile_to: Path | None = None):
        self.log = log
        command = [sys.executable, "manage.py", "worker"]
        if profile_to is not None:  # the same worker with cProfile in every thread (bench/profiled_worker.py)
            command = [sys.executable, "-m", "bench.profiled_worker", str(profile_to), "worker"][:-1]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, "--workers", str(threads)],
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def started(self) -> bool:
        if self.process.poll() is not None:
            raise BenchError(f"a worker exited with {self.process.returncode}: {self.tail()}")
        return "Task engine worker" in self.log.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User and system CPU time so far (/proc/<pid>/stat), while it runs."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError("no VmRSS for the worker")

    def tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def workers(env: dict[str, str], count: int, threads: int, profile_to: Path | None = None):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = [WorkerProcess(env, DATA_DIR / f"worker-{n}.log", threads, profile_to) for n in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def wait_until_scheduling(engine, processes: list[WorkerProcess]) -> None:
    """Every worker up and one of them holding the scheduler lease with a fresh heartbeat."""
    from sqlalchemy import select

    from core.engine.scheduler import SCHEDULER
    from core.models import EngineLease, utcnow

    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if all(p.started() for p in processes):
            with engine.connect() as conn:
                beat = conn.scalar(select(EngineLease.heartbeat_at).where(EngineLease.name == SCHEDULER))
            if beat is not None and utcnow() - beat < timedelta(seconds=3):
                return
        time.sleep(POLL)
    raise BenchError(f"the workers did not start scheduling within {START_WAIT} s: {processes[0].tail()}")


def make_all_due(engine) -> None:
    from sqlalchemy import update

    from core.models import Integration, utcnow

    with engine.begin() as conn:
        conn.execute(update(Integration).values(next_check_at=utcnow()))


def checks_recorded(engine) -> tuple[int, int]:
    from sqlalchemy import distinct, func, select

    from core.models import CheckRecord

    with engine.connect() as conn:
        row = conn.execute(select(func.count(), func.count(distinct(CheckRecord.integration_id)))).one()
    return row[0], row[1]


# ----- a measurement -------------------------------------------------------------------------------


def measure(total: int, timeout: float) -> list[Round]:
    from core import db

    rounds = []
    with fake_hosts(HOSTS, DELAY) as hosts:
        place = prepare(total, hosts.urls)
        engine = db.make_engine(place.url)
        try:
            for count in WORKER_COUNTS:
                rounds.append(one_round(engine, place, hosts, count, total, timeout))
        finally:
            from core.engine.queue import make_huey

            make_huey(REDIS_URL, "", place.queue).flush()
            engine.dispose()
    return rounds


def one_round(
    engine, place: Place, hosts: FakeHosts, count: int, total: int, timeout: float, profile_to: Path | None = None
) -> Round:
    reset_round(engine, place.queue)
    hosts.get("/_reset")
    print(f"· workers: {count} worker(s), {total:,} checks …", file=sys.stderr, flush=True)
    with workers(place.env, count, THREADS, profile_to) as processes:
        wait_until_scheduling(engine, processes)
        cpu_before = sum(p.cpu_seconds() for p in processes)
        started = time.perf_counter()
        make_all_due(engine)
        deadline = started + timeout
        while (recorded := checks_recorded(engine))[0] < total:
            if time.perf_counter() > deadline:
                raise BenchError(f"{count} worker(s) recorded {recorded[0]} of {total} checks in {timeout:g} s")
            for p in processes:
                p.started()  # raises when one died
            time.sleep(POLL)
        seconds = time.perf_counter() - started
        cpu = sum(p.cpu_seconds() for p in processes) - cpu_before
        load = os.getloadavg()[0]
        time.sleep(2)  # a duplicate would show up now
        checks, distinct = checks_recorded(engine)
    overall = hosts.get("/_overall")
    per_host = hosts.get("/_stats")
    busiest = max(s["most_at_once"] for s in per_host.values())
    return Round(count, seconds, checks, distinct, overall["served"], overall["most_at_once"], busiest, cpu, load)
