"""Two app processes and two `manage.py worker` processes on PostgreSQL and Redis share a check-all.

The apps run no consumer (ENGINE_EMBEDDED_WORKERS=0, as with REDIS_URL by default): an administrator starts
Check all on A's page in Chromium, A hands the run to Redis, and the two workers (four threads each) run its
30 checks on four slow hosts with CHECK_CONCURRENCY=3 and CHECK_PER_HOST=1 counted over both of them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.models import CheckRecord, CheckRun, Integration, utcnow
from tests.conftest import wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts
from tests.faults.conftest import Queue, Worker, answers, worker_env
from tests.multiprocess.conftest import is_postgresql, running_apps
from tests.multiprocess.test_two_processes import WAIT_MS, idle, sign_in, success

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.browser,
    pytest.mark.skipif(
        not is_postgresql(os.environ.get("TEST_DATABASE_URL")),
        reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql://... (processes share a database server)",
    ),
    pytest.mark.skipif(not answers(6379), reason="no Redis answers on 127.0.0.1:6379: workers cannot share a queue"),
]

TOKEN = "bt-shared-" + "W1o2R3k4E5r6"
COUNT, HOSTS = 30, 4
CHECK_SECONDS = 0.5
QUEUE = Queue("redis", redis_url="redis://127.0.0.1:6379/15", name=f"multiprocess-{uuid.uuid4().hex[:12]}")
CAPS = {"CHECK_CONCURRENCY": "3", "CHECK_PER_HOST": "1", "ENGINE_TICK_SECONDS": "1"}
# Huey's line for a job that ended without a retry ("... full, try again shortly" is logged as a retry).
EXECUTED = re.compile(r"core\.engine\.tasks\.check_run_item: [^\n]* executed in")


@pytest.fixture(scope="module")
def engine_apps(database_url, tmp_path_factory):
    settings = {**QUEUE.env(), **CAPS, "ENGINE_EMBEDDED_WORKERS": "0"}
    try:
        with running_apps(database_url, tmp_path_factory.mktemp("shared-workers"), settings) as started:
            yield started
    finally:
        QUEUE.flush()


def scheduler_holder(ctx) -> str | None:
    beat = ctx.tasks.heartbeat()
    return beat.holder if not beat.stale(utcnow(), 1) else None


def test_two_workers_share_a_check_all_started_on_a_page_with_the_caps_held(engine_apps, browser, ctx, admin, tmp_path):
    a, b = engine_apps
    hosts = SlowHosts(HOSTS, delay=CHECK_SECONDS).start()
    workers: list[Worker] = []
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    try:
        views = [slow_hosts.add_crm(ctx, admin, hosts.urls[i % HOSTS], f"crm {i:02}", TOKEN) for i in range(COUNT)]
        ids = {v.id for v in views}
        with ctx.factory.begin() as session:  # no scheduled check during the run: its lease would make an item busy
            session.execute(update(Integration).values(next_check_at=utcnow() + timedelta(days=1)))
        env = worker_env(ctx.settings.database_url, QUEUE, tmp_path, **CAPS)
        workers = [Worker(env, tmp_path / f"worker-{n}.log", threads=4, logged=True) for n in (1, 2)]
        pids = {w.pid for w in workers}
        wait_for(
            lambda: all("engine_tick" in w.text() for w in workers) and scheduler_holder(ctx),
            45,
            what="both workers ticking and one of them the scheduler",
        )

        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        sign_in(page, a.url, "root", "admin-password-1")
        page.get_by_role("button", name="Check all").click()

        holders: set[str | None] = set()
        done = success(page, f"Checked {COUNT} of {COUNT}")
        deadline = time.monotonic() + 90
        while done.count() == 0:  # while it runs, the scheduler lease stays with one worker
            assert time.monotonic() < deadline, f"the run did not finish; workers:\n{workers[0].tail()}"
            holders.add(scheduler_holder(ctx))
            page.wait_for_timeout(250)
        idle(page)

        with ctx.factory() as session:
            run = session.scalars(select(CheckRun).order_by(CheckRun.id.desc())).first()
            assert run is not None
            checked = session.scalars(select(CheckRecord.integration_id).where(CheckRecord.run_id == run.id)).all()
        assert (run.total, run.done, run.connected, run.skipped) == (COUNT, COUNT, COUNT, 0)
        assert sorted(checked) == sorted(ids)  # each integration checked exactly once for the run
        assert 2 <= hosts.overall.most_at_once <= 3, hosts.overall.most_at_once  # in parallel, never above 3
        assert all(c["most_at_once"] == 1 for c in hosts.stats().values()), hosts.stats()  # never 2 on a host
        assert sum(c["served"] for c in hosts.stats().values()) == COUNT
        ran = [len(EXECUTED.findall(w.text())) for w in workers]
        assert all(n > 0 for n in ran) and sum(ran) >= COUNT, ran  # both workers ran some of the checks
        assert len(holders) == 1, holders  # exactly one scheduler, the same one, for the whole run
        (holder,) = holders
        assert holder is not None and any(f":{pid}:" in holder for pid in pids), (holder, pids)
        assert all(w.alive() for w in workers)
        assert a.process.poll() is None and b.process.poll() is None  # both apps served all along, running no job
    finally:
        context.close()
        for worker in workers:
            worker.stop()
        hosts.stop()
