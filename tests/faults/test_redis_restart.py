"""Restart Redis in the middle of a run: its queue is gone (a server without persistence), the worker keeps
running and says what failed, every integration is checked again once its plan runs out, and no two checks
of one integration ever overlap. A redis-server of the test's own, on the test database."""

from __future__ import annotations

import itertools
import time

import pytest

from core.models import utcnow
from tests.conftest import wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts
from tests.faults.conftest import Queue, checked_since, due_now, history, plans_run_out, worker_env

TOKEN = "bt-faults-" + "R1e2D3i4S5x6"
COUNT = 5
CHECK_SECONDS = 0.3  # each check's request takes this long at its host
DOWN_SECONDS = 3.0  # how long Redis stays down: the worker meets it on every poll meanwhile


@pytest.fixture
def hosts():
    servers = SlowHosts(COUNT, delay=CHECK_SECONDS).start()
    yield servers
    servers.stop()


def test_a_redis_restart_loses_no_check_for_good_and_never_runs_one_twice_at_once(
    ctx, owner, hosts, redis_server, start_worker, tmp_path
):
    # One integration per host: a host's "most requests at once" is then that integration's checks at once.
    views = [slow_hosts.add_crm(ctx, owner, hosts.urls[i], f"crm {i}", TOKEN) for i in range(COUNT)]
    ids = [v.id for v in views]
    due_now(ctx.factory, ids)
    queue = Queue("redis", redis_url=redis_server.url, name="faults-restart")
    env = worker_env(
        ctx.settings.database_url,
        queue,
        tmp_path,
        CHECK_INTERVAL_SECONDS="1",
        CHECK_PER_HOST="2",  # the per-host cap alone would allow two at once: only the lease keeps it to one
    )
    worker = start_worker(env)
    started = utcnow()
    wait_for(lambda: all(history(ctx.factory, i) for i in ids), 30, what="a first check of each integration")

    redis_server.kill()
    time.sleep(DOWN_SECONDS)
    redis_server.start()  # the same port, an empty server: every planned check in the queue is gone
    restarted = utcnow()
    assert worker.alive(), worker.tail()

    # The plans of the lost jobs last minutes (the lease time plus a tick); move the clock past them.
    plans_run_out(ctx.factory, ids)
    wait_for(
        lambda: all(checked_since(ctx.factory, i, restarted) for i in ids),
        40,
        what="a check of every integration after the restart",
    )
    assert worker.alive(), worker.tail()
    said = worker.text()  # Huey's consumer logged each failed look at the queue, and went on
    assert "Error reading from queue" in said and "redis.exceptions.ConnectionError" in said, worker.tail()

    for address, counter in hosts.counters.items():  # never two checks of one integration at once
        assert counter.most_at_once == 1, (address, counter.most_at_once)
    for integration_id in ids:  # and, from the history, none closer than one check takes
        times = [c.at for c in history(ctx.factory, integration_id) if c.at > started]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert all(gap >= CHECK_SECONDS for gap in gaps), (integration_id, gaps)
    # The scheduler went on beating through the worker's own, reconnected, queue.
    assert not ctx.tasks.heartbeat().stale(utcnow(), 1)
