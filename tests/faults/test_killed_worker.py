"""kill -9 a `manage.py worker` in the middle of a check: the job dies with it (Huey takes a job off the queue
before running it), the integration's lease and plan expire, another worker takes over the scheduler and
checks it again, once; the other integrations' checks are not lost. On the SQLite queue and on Redis, on
the test database (SQLite, or TEST_DATABASE_URL's PostgreSQL). And a dead scheduler is noticed: its heartbeat goes
stale and the Integrations page warns."""

from __future__ import annotations

import time

import pytest

import app_context
from core.models import Integration, utcnow
from tests.conftest import make_settings, wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts
from tests.faults.conftest import QUEUES, Queue, checked_since, due_now, history, plans_run_out, worker_env
from ui.check_all import engine_warning

TOKEN = "bt-faults-" + "K1l2L3n4I5n6"
SLOW_SECONDS = 4.0  # the slow host's answer: long enough to kill the worker while its check is under way
INTERVAL = 6  # CHECK_INTERVAL_SECONDS: the slow integration is not due again before the test ends


@pytest.fixture
def hosts():
    servers = SlowHosts(2, delay=0.02)
    servers.delays["127.0.0.1"] = SLOW_SECONDS
    servers.start()
    yield servers
    servers.stop()


def lease_holder(ctx, integration_id: int) -> str | None:
    with ctx.factory() as session:
        row = session.get(Integration, integration_id)
        assert row is not None
        return row.check_lease_holder


@pytest.mark.parametrize("queue", QUEUES, indirect=True)
def test_a_worker_killed_mid_check_loses_only_that_check_and_it_runs_again_once(
    ctx, owner, hosts, queue, start_worker, tmp_path
):
    slow = slow_hosts.add_crm(ctx, owner, hosts.urls[0], "slow", TOKEN)
    fast = slow_hosts.add_crm(ctx, owner, hosts.urls[1], "fast", TOKEN)
    due_now(ctx.factory, [slow.id, fast.id])
    env = worker_env(ctx.settings.database_url, queue, tmp_path, CHECK_INTERVAL_SECONDS=str(INTERVAL))
    first = start_worker(env)

    # The slow check is under way: its lease is held and its request is at the host; the fast one's first
    # check is over (killed in the middle, it would be lost as well, until its own lease ran out).
    wait_for(
        lambda: (
            lease_holder(ctx, slow.id)
            and hosts.counters["127.0.0.1"].in_flight == 1
            and history(ctx.factory, fast.id)
            and lease_holder(ctx, fast.id) is None
        ),
        30,
        what="the slow check under way and the fast one checked",
    )
    first.kill9()
    killed_at = utcnow()
    assert first.process.returncode == -9
    assert history(ctx.factory, slow.id) == []  # it died before recording anything
    assert lease_holder(ctx, slow.id) is not None  # ... and left its lease behind

    # The lease expires: five minutes at least (LEASE_TIME), so the clock is moved on instead (see
    # plans_run_out). The dead worker's scheduler lease is left to run out by itself (3 ticks + 5 s).
    plans_run_out(ctx.factory, [slow.id], leases_too=True)
    second = start_worker(env)

    rerun = wait_for(lambda: checked_since(ctx.factory, slow.id, killed_at), 40, what="the slow check run again")
    assert [(c.trigger, c.success) for c in rerun] == [("schedule", True)]
    # The other integration's checks were not lost: it is checked on its schedule after the kill too.
    wait_for(lambda: checked_since(ctx.factory, fast.id, killed_at), 30, what="a check of the fast one after the kill")
    # Exactly one check for that due time: none more before its next due time (INTERVAL later, ± 10 %).
    settle = rerun[0].at.timestamp() + 1.5 - utcnow().timestamp()
    time.sleep(max(0.0, settle))
    assert len(history(ctx.factory, slow.id)) == 1
    with ctx.factory() as session:
        stored = session.get(Integration, slow.id)
        assert stored is not None and stored.check_lease_holder is None and stored.health == "connected"
        assert stored.next_check_at is not None and stored.next_check_at > rerun[0].at
    # The slow host was called twice: the killed check (its answer went nowhere) and the one re-run.
    assert hosts.counters["127.0.0.1"].served + hosts.counters["127.0.0.1"].in_flight == 2
    # The second worker took over as the scheduler once the dead one's lease ran out.
    beat = ctx.tasks.heartbeat()
    assert beat.holder is not None and f":{second.pid}:" in beat.holder, beat.holder
    assert second.alive(), second.tail()


def test_a_dead_scheduler_is_noticed_its_heartbeat_goes_stale_and_the_page_warns(ctx, owner, start_worker, tmp_path):
    queue = Queue("sqlite", path=ctx.settings.engine_queue_path)
    page_ctx = app_context.build(make_settings(ctx.settings.database_url, engine_tick_seconds=1), migrate=False)
    worker = start_worker(worker_env(ctx.settings.database_url, queue, tmp_path))
    try:
        beat = wait_for(lambda: (b := page_ctx.tasks.heartbeat()).holder and b, 30, what="the worker's first tick")
        assert f":{worker.pid}:" in (beat.holder or "")
        assert engine_warning(page_ctx) is None  # a scheduler beats: the page says nothing

        worker.kill9()
        # Three ticks and five seconds without a beat: stale, and the page says when the scheduler last ran.
        warning = wait_for(lambda: engine_warning(page_ctx), 20, what="the stale-heartbeat warning")
        last = page_ctx.tasks.heartbeat().at
        assert last is not None and f"{last:%Y-%m-%d %H:%M:%S}" in warning and "manage.py worker" in warning
    finally:
        page_ctx.engine.dispose()
