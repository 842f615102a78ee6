"""Check all on the task engine against real local hosts: caps across workers, leases, cancel, progress
read from the database, results and the audit trail."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.engine.runs import run_holder_prefix
from core.integrations import leases
from core.integrations.checks import CheckAllScope, CheckOutcome
from core.models import AuditEvent, CheckRecord, CheckRunItem, Integration, utcnow
from core.ratelimit import RateLimitedError
from tests.conftest import wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts

TOKEN = "bt-health-" + "Q1w2E3r4T5y6"


@pytest.fixture
def hosts():
    servers = SlowHosts(4, delay=0.05).start()
    yield servers
    servers.stop()


def add(ctx, actor, url: str, name: str):
    return slow_hosts.add_crm(ctx, actor, url, name, TOKEN)


def caps(ctx, running: int, per_host: int) -> None:
    ctx.tasks.limits = replace(ctx.tasks.limits, max_running=running, per_host=per_host)


def finished(ctx, actor, run_id: int, timeout: float = 60):
    return wait_for(
        lambda: (p := ctx.tasks.progress(actor, run_id)).finished and p, timeout, what=f"check-all run {run_id}"
    )


def test_checks_every_active_integration_within_both_caps_across_consumers(ctx, owner, hosts, workers):
    views = [add(ctx, owner, hosts.urls[i % 4], f"crm {i}") for i in range(24)]
    inactive = add(ctx, owner, hosts.urls[0], "switched off")
    ctx.integrations.set_active(owner, inactive.id, False)
    caps(ctx, running=3, per_host=2)
    workers(4, periodic=False)
    workers(4, periodic=False)  # two consumers: eight threads compete for three slots

    progress = finished(ctx, owner, ctx.tasks.start_check_all(owner, CheckAllScope()))

    assert (progress.total, progress.done, progress.connected, progress.failed) == (24, 24, 24, 0)
    assert not progress.cancelled and progress.running == 0
    assert hosts.overall.most_at_once <= 3
    assert all(c["most_at_once"] <= 2 for c in hosts.stats().values())
    assert sum(c["served"] for c in hosts.stats().values()) == 24  # the inactive one was not called
    for view in views:
        stored = ctx.integrations.get(owner, view.id)
        assert stored.status == "connected" and stored.last_checked_at is not None
        assert stored.version == view.version  # a check is not an edit
    assert ctx.integrations.get(owner, inactive.id).status == "unknown"
    with ctx.factory() as session:
        assert session.scalar(select(Integration.id).where(Integration.check_lease_holder.is_not(None))) is None
        history = session.scalars(select(CheckRecord).where(CheckRecord.run_id == progress.run_id)).all()
        runs = session.scalars(select(AuditEvent).where(AuditEvent.action == "integration.check_all")).all()
    assert len(history) == 24 and {(h.trigger, h.check_class, h.success) for h in history} == {
        ("check_all", "ok", True)
    }
    assert len(runs) == 1 and runs[0].details["checked"] == 24 and runs[0].actor == owner.username
    assert TOKEN not in json.dumps([h.message for h in history] + [r.details for r in runs])


def test_failures_are_stored_with_their_message_and_class(ctx, owner, hosts, workers):
    hosts.failing.add("127.0.0.2")
    good = add(ctx, owner, hosts.urls[0], "good")
    bad = add(ctx, owner, hosts.urls[1], "bad")
    workers(2, periodic=False)

    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())
    progress = finished(ctx, owner, run_id)

    assert (progress.failed, progress.connected) == (1, 1)
    assert "Checked 2 of 2: 1 connected, 1 failing." in progress.line()
    failures = ctx.tasks.runs.failures(owner, run_id)
    assert [(i, name) for i, name, _ in failures] == [(bad.id, "bad")] and "401" in failures[0][2]
    assert ctx.integrations.get(owner, good.id).status == "connected"
    assert ctx.integrations.get(owner, bad.id).status == "error"
    with ctx.factory() as session:
        row = session.get(Integration, bad.id)
        assert row is not None and row.health == "needs_reconnect" and row.last_check_class == "auth"


def test_an_integration_checked_elsewhere_is_skipped_not_checked_twice(ctx, owner, hosts, workers):
    busy = add(ctx, owner, hosts.urls[0], "busy")
    free = add(ctx, owner, hosts.urls[1], "free")
    with ctx.factory.begin() as session:
        assert [row[0] for row in leases.claim(session, [busy.id], leases.new_holder())] == [busy.id]
    workers(2, periodic=False)

    progress = finished(ctx, owner, ctx.tasks.start_check_all(owner, CheckAllScope()))
    single = ctx.integrations.test(owner, busy.id)

    assert (progress.skipped, progress.done) == (1, 1)
    assert "1 skipped" in progress.line()
    assert hosts.stats()["127.0.0.1"]["served"] == 0
    assert ctx.integrations.get(owner, busy.id).status == "unknown"
    assert ctx.integrations.get(owner, free.id).status == "connected"
    assert not single.success and single.error == "busy" and "is being checked right now" in single.message


def test_an_expired_lease_is_free_again(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "crashed checker")
    with ctx.factory.begin() as session:
        leases.claim(session, [view.id], leases.new_holder())
        session.execute(
            update(Integration)
            .where(Integration.id == view.id)
            .values(check_lease_until=utcnow() - timedelta(seconds=1))
        )
    assert ctx.integrations.test(owner, view.id).success


def test_a_late_result_never_overwrites_a_newer_check(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "raced")
    claim = ctx.integrations.claim_for_engine(view.id, 4, 2)
    assert not isinstance(claim, str)
    outcome = ctx.integrations.run_leased("CUSTOM", view.id, claim.configuration, "schedule")
    with ctx.factory.begin() as session:  # the lease expired and another check took it meanwhile
        session.execute(update(Integration).where(Integration.id == view.id).values(check_lease_holder="someone-else"))
    ctx.integrations.record_checks(owner, claim.holder, [outcome])
    assert ctx.integrations.get(owner, view.id).status == "unknown"
    with ctx.factory() as session:
        assert session.scalar(select(func.count()).select_from(CheckRecord)) == 0


def test_cancel_skips_what_has_not_started_and_frees_every_lease(ctx, owner, hosts, workers):
    hosts.delay = 0.3
    for i in range(40):
        add(ctx, owner, hosts.urls[i % 4], f"crm {i}")
    caps(ctx, running=2, per_host=1)
    workers(2, periodic=False)
    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())
    wait_for(lambda: ctx.tasks.progress(owner, run_id).done >= 1, what="the first check")

    ctx.tasks.cancel(owner, run_id)
    progress = finished(ctx, owner, run_id)

    assert progress.cancelled and 1 <= progress.done < 40
    assert progress.done + progress.skipped == 40
    assert progress.line().startswith("Cancelled. ")
    served = sum(c["served"] for c in hosts.stats().values())
    with ctx.factory() as session:
        assert session.scalar(select(Integration.id).where(Integration.check_lease_holder.is_not(None))) is None
        checked = session.scalar(select(func.count()).select_from(CheckRecord).where(CheckRecord.run_id == run_id))
    assert checked == progress.done == served


def test_a_cancel_between_the_lease_and_the_start_keeps_the_check_from_running(ctx, owner, hosts, monkeypatch):
    view = add(ctx, owner, hosts.urls[0], "raced")
    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())  # no worker: the item is run by hand below
    start_item = ctx.tasks.runs.start_item

    def cancelled_first(run: int, integration_id: int) -> bool:
        ctx.tasks.cancel(owner, run)  # the person presses Cancel after this worker took the lease
        return start_item(run, integration_id)

    monkeypatch.setattr(ctx.tasks.runs, "start_item", cancelled_first)
    ctx.tasks._check_run_item(run_id, view.id)

    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.finished, progress.done, progress.skipped) == (True, 0, 1)
    assert sum(c["served"] for c in hosts.stats().values()) == 0
    with ctx.factory() as session:
        assert session.scalar(select(Integration.check_lease_holder).where(Integration.id == view.id)) is None
        assert session.scalar(select(func.count()).select_from(CheckRecord).where(CheckRecord.run_id == run_id)) == 0


def test_a_check_started_before_the_cancel_finishes_and_counts(ctx, owner, hosts, monkeypatch):
    view = add(ctx, owner, hosts.urls[0], "under way")
    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())
    run_leased = ctx.integrations.run_leased

    def cancelled_meanwhile(*args, **kwargs):
        assert ctx.tasks.cancel(owner, run_id).skipped == 0  # its check has started: not skipped
        return run_leased(*args, **kwargs)

    monkeypatch.setattr(ctx.integrations, "run_leased", cancelled_meanwhile)
    ctx.tasks._check_run_item(run_id, view.id)

    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.cancelled, progress.finished, progress.done, progress.skipped) == (True, True, 1, 0)
    assert sum(c["served"] for c in hosts.stats().values()) == 1


def test_a_cancelled_run_whose_worker_died_mid_check_still_finishes(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "lost with its worker")
    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())
    claim = ctx.integrations.claim_for_engine(view.id, 10, 10, None, run_holder_prefix(run_id) + leases.new_holder())
    assert ctx.tasks.runs.start_item(run_id, view.id)
    ctx.tasks.cancel(owner, run_id)
    ctx.tasks.runs.settle_cancelled(timedelta(0))
    assert not ctx.tasks.progress(owner, run_id).finished  # its lease still runs: the check may yet record

    with ctx.factory.begin() as session:  # the worker died; its lease runs out
        session.execute(
            update(Integration)
            .where(Integration.check_lease_holder == claim.holder)
            .values(check_lease_until=utcnow() - timedelta(seconds=1))
        )
    ctx.tasks.runs.settle_cancelled(timedelta(0))

    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.finished, progress.done, progress.skipped) == (True, 0, 1)


def test_a_reloaded_page_finds_the_unfinished_run_and_others_cannot_read_it(ctx, owner, member, hosts):
    add(ctx, owner, hosts.urls[0], "one")
    run_id = ctx.tasks.start_check_all(owner, CheckAllScope())  # no worker: it waits in the queue
    assert ctx.tasks.runs.unfinished(owner) == run_id
    assert ctx.tasks.progress(owner, run_id).not_checked == 1
    from core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        ctx.tasks.progress(member, run_id)


def test_members_check_their_own_and_admins_choose_a_scope(ctx, owner, admin, member, hosts):
    mine = add(ctx, owner, hosts.urls[0], "olga's")
    admins = add(ctx, admin, hosts.urls[1], "root's")
    targets = ctx.integrations.check_targets

    assert [t.integration_id for t in targets(owner, CheckAllScope(everyone=True))] == [mine.id]
    assert [t.integration_id for t in targets(admin, CheckAllScope())] == [admins.id]
    assert {t.integration_id for t in targets(admin, CheckAllScope(everyone=True))} == {mine.id, admins.id}
    assert [t.integration_id for t in targets(admin, CheckAllScope(everyone=True, tier="ENTERPRISE"))] == [
        mine.id,
        admins.id,
    ]
    assert targets(admin, CheckAllScope(everyone=True, provider="HUBSPOT")) == []
    assert targets(member, CheckAllScope()) == []
    assert {t.host for t in targets(admin, CheckAllScope(everyone=True))} == {"127.0.0.1", "127.0.0.2"}


def test_check_all_runs_are_rate_limited_per_person(ctx, owner):
    for _ in range(10):
        ctx.tasks.start_check_all(owner, CheckAllScope())
    with pytest.raises(RateLimitedError):
        ctx.tasks.start_check_all(owner, CheckAllScope())


def test_testing_the_edit_form_of_a_saved_integration_takes_its_lease_too(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "edited")
    holder = leases.new_holder()
    with ctx.factory.begin() as session:
        leases.claim(session, [view.id], holder)
    result = ctx.integrations.test_configuration(owner, "CUSTOM", view.configuration, integration_id=view.id)
    assert not result.success and result.error == "busy"
    ctx.integrations.release_checks([view.id], holder)
    assert ctx.integrations.test_configuration(owner, "CUSTOM", view.configuration, integration_id=view.id).success


def test_an_item_handed_out_twice_is_checked_and_counted_once(ctx, owner, hosts, workers):
    view = add(ctx, owner, hosts.urls[0], "twice")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    ctx.tasks.check_run_item(run_id, view.id)
    ctx.tasks.check_run_item(run_id, view.id)  # a sweep handed it out again
    workers(2, periodic=False)

    progress = finished(ctx, owner, run_id)

    assert (progress.total, progress.done, progress.skipped) == (1, 1, 0)
    assert hosts.stats()["127.0.0.1"]["served"] == 1
    with ctx.factory() as session:
        assert session.scalar(select(CheckRunItem.state).where(CheckRunItem.run_id == run_id)) == "done"


def test_outcomes_of_other_holders_are_ignored(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "not mine")
    from core.results import TestResult

    recorded = ctx.integrations.record_checks(
        owner, "nobody", [CheckOutcome(view.id, "CUSTOM", TestResult(True, "fine"))]
    )
    assert recorded.changes == []
    assert ctx.integrations.get(owner, view.id).status == "unknown"


def test_a_check_that_leaves_its_run_unfinished_writes_nothing_to_finish_it(ctx, owner, hosts):
    """Every check asks whether its run is complete; all but the last only read (no write lock)."""
    from sqlalchemy import event

    for n in range(2):
        add(ctx, owner, hosts.urls[n], f"one of two {n}")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    written: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT")):
            written.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        assert ctx.tasks.runs.finish_if_complete(run_id) is False
    finally:
        event.remove(ctx.engine, "before_cursor_execute", record)
    assert written == []
    assert not ctx.tasks.progress(owner, run_id).finished


def _busy_for(ctx, monkeypatch, times: int) -> list[int]:
    """record_checks refuses with DatabaseBusyError `times` times (SQLite's busy timeout passed), then works."""
    from core.engine import tasks
    from core.errors import DatabaseBusyError

    monkeypatch.setattr(tasks, "RECORD_RETRY", (0.0, 0.0))
    record_checks = ctx.integrations.record_checks
    refused: list[int] = []

    def busy_then_fine(*args, **kwargs):
        if len(refused) < times:
            refused.append(1)
            raise DatabaseBusyError()
        return record_checks(*args, **kwargs)

    monkeypatch.setattr(ctx.integrations, "record_checks", busy_then_fine)
    return refused


def test_a_busy_database_when_a_check_records_is_waited_out_not_lost(ctx, owner, hosts, monkeypatch):
    view = add(ctx, owner, hosts.urls[0], "recorded late")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    refused = _busy_for(ctx, monkeypatch, times=2)

    ctx.tasks._check_run_item(run_id, view.id)

    assert len(refused) == 2
    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.finished, progress.done, progress.connected) == (True, 1, 1)
    assert hosts.stats()["127.0.0.1"]["served"] == 1  # stored, not checked again


def test_a_check_whose_record_keeps_failing_frees_its_lease_so_the_retry_checks_again(ctx, owner, hosts, monkeypatch):
    from huey.exceptions import RetryTask

    from core.engine.tasks import RECORD_ATTEMPTS

    view = add(ctx, owner, hosts.urls[0], "retried")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    _busy_for(ctx, monkeypatch, times=RECORD_ATTEMPTS)

    with pytest.raises(RetryTask):
        ctx.tasks._check_run_item(run_id, view.id)
    with ctx.factory() as session:
        assert session.scalar(select(Integration.check_lease_holder).where(Integration.id == view.id)) is None

    ctx.tasks._check_run_item(run_id, view.id)  # the job's retry: it must not read its own lease as busy

    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.finished, progress.done, progress.skipped) == (True, 1, 0)
    assert hosts.stats()["127.0.0.1"]["served"] == 2


class _Job:
    """What a job sees of its Huey task: its id, which Huey's requeue of a retried job keeps."""

    id = "5e1f0c3a-9b7d-4e2a-8c61-2f4d0a9b3e71"


@pytest.mark.parametrize("refusing", ["start_item", "release_checks"])
def test_a_retried_check_takes_over_the_lease_its_failed_attempt_could_not_free(
    ctx, owner, hosts, monkeypatch, refusing
):
    """The database refuses the step right after the claim (marking the item started; freeing the lease
    when the caps are full): the job backs off with its lease still held. Its retry, the same Huey task,
    must check the item, not read that lease as a check under way and leave the item pending for ever."""
    from huey.exceptions import RetryTask

    from core.errors import DatabaseBusyError

    view = add(ctx, owner, hosts.urls[0], "claimed, then refused")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    target = ctx.tasks.runs if refusing == "start_item" else ctx.integrations
    if refusing == "release_checks":
        caps(ctx, running=0, per_host=0)  # full: the claim frees its lease and the job retries later
    original = getattr(target, refusing)

    def busy(*_args, **_kwargs):
        raise DatabaseBusyError()

    monkeypatch.setattr(target, refusing, busy)
    with pytest.raises(RetryTask):
        ctx.tasks._check_run_item(run_id, view.id, task=_Job())
    with ctx.factory() as session:
        assert session.scalar(select(Integration.check_lease_holder).where(Integration.id == view.id))
    monkeypatch.setattr(target, refusing, original)
    caps(ctx, running=4, per_host=2)

    ctx.tasks._check_run_item(run_id, view.id, task=_Job())  # the retry

    progress = ctx.tasks.progress(owner, run_id)
    assert (progress.finished, progress.done, progress.connected, progress.skipped) == (True, 1, 1, 0)
    assert hosts.stats()["127.0.0.1"]["served"] == 1


def test_another_job_reads_a_held_lease_as_a_check_under_way(ctx, owner, hosts):
    """A second copy of a run's item (handed out again by a sweep) is another task: it leaves the lease alone."""
    view = add(ctx, owner, hosts.urls[0], "checked by its first copy")
    run_id = ctx.tasks.runs.start(owner, CheckAllScope())
    first = ctx.integrations.claim_for_engine(view.id, 4, 2, None, run_holder_prefix(run_id) + _Job.id)
    assert ctx.tasks.runs.start_item(run_id, view.id)

    ctx.tasks._check_run_item(run_id, view.id)  # no task: a holder of its own

    with ctx.factory() as session:
        assert session.scalar(select(Integration.check_lease_holder).where(Integration.id == view.id)) == first.holder
    assert hosts.stats() == {} or hosts.stats()["127.0.0.1"]["served"] == 0
    assert not ctx.tasks.progress(owner, run_id).finished
