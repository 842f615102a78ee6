"""Worker memory: the resident memory of one `manage.py worker` process (16 threads, the global cap) over
100,000 scheduled checks (--worker-checks), after a warm-up of the first tenth of them.

The set-up is bench/workers.py's (a PostgreSQL schema of its own, a Redis queue, the 500 fake hosts
answering after 50 ms), with a check interval of one second, so each integration comes due again as soon
as it was checked and the worker runs checks back to back. The worker's VmRSS is read every half second
with the number of checks recorded; the figure is the memory at the end minus the memory when the
warm-up was over.
"""

from __future__ import annotations

import sys
import time

from bench.common import BenchError, Figure, Options, failed, median, skipped
from bench.workers import (
    DELAY,
    HOSTS,
    POLL,
    REDIS_URL,
    checks_recorded,
    fake_hosts,
    make_all_due,
    missing_servers,
    prepare,
    reset_round,
    wait_until_scheduling,
    workers,
)

LIMIT_MB = 20.0
THREADS = 16
SCHEMA = "worker_memory"
WARMUP = 0.1  # of the checks
SAMPLE = 0.5  # seconds between readings


def name(total: int) -> str:
    return f"Worker memory over {total:,} checks"


def figures(_target, options: Options) -> list[Figure]:
    total = options.worker_checks
    if problem := missing_servers():
        return [skipped(name(total), "PostgreSQL", LIMIT_MB, problem, "MB")]
    try:
        samples, seconds = measure(total, options.timeout)
    except Exception as exc:
        return [failed(name(total), "PostgreSQL", LIMIT_MB, f"{type(exc).__name__}: {exc}", "MB")]
    return [figure_of(samples, total, seconds)]


def figure_of(samples: list[tuple[int, float]], total: int, seconds: float) -> Figure:
    """samples: (checks recorded, resident MB), in time order."""
    warm, end, peak = growth_points(samples, total)
    measured = (
        f"RSS {end:.0f} MB at the end vs {warm:.0f} MB after {int(total * WARMUP):,} checks (peak {peak:.0f} MB); "
        f"{total / seconds:.0f} checks/s"
    )
    details = {"samples": samples, "seconds": seconds}
    return Figure(name(total), "PostgreSQL", measured, end - warm, LIMIT_MB, "MB", details=details)


def growth_points(samples: list[tuple[int, float]], total: int) -> tuple[float, float, float]:
    """(MB when the warm-up ended, MB at the end, peak MB): the first and last readings are medians of up
    to three readings, so one reading taken mid-collection does not decide it."""
    if not samples:
        raise BenchError("no memory reading")
    after = [i for i, (checks, _) in enumerate(samples) if checks >= total * WARMUP]
    start = after[0] if after else 0
    warm = median([mb for _, mb in samples[start : start + 3]])
    end = median([mb for _, mb in samples[-3:]])
    return warm, end, max(mb for _, mb in samples)


def measure(total: int, timeout: float) -> tuple[list[tuple[int, float]], float]:
    from core import db
    from core.engine.queue import make_huey

    integrations = min(10_000, max(HOSTS, total // 10))
    with fake_hosts(HOSTS, DELAY) as hosts:
        place = prepare(integrations, hosts.urls, SCHEMA)
        env = {**place.env, "CHECK_INTERVAL_SECONDS": "1"}
        engine = db.make_engine(place.url)
        try:
            reset_round(engine, place.queue)
            print(f"· worker memory: {total:,} checks …", file=sys.stderr, flush=True)
            with workers(env, 1, THREADS) as (worker,):
                wait_until_scheduling(engine, [worker])
                started = time.perf_counter()
                make_all_due(engine)
                samples: list[tuple[int, float]] = []
                while not samples or samples[-1][0] < total:
                    if time.perf_counter() - started > timeout:
                        raise BenchError(f"{samples[-1][0] if samples else 0} of {total} checks in {timeout:g} s")
                    worker.started()  # raises when it died
                    samples.append((checks_recorded(engine)[0], worker.rss_mb()))
                    time.sleep(max(SAMPLE, POLL))
                seconds = time.perf_counter() - started
        finally:
            make_huey(REDIS_URL, "", place.queue).flush()
            engine.dispose()
    return samples, seconds
