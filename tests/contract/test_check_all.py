"""Check all against real local hosts: caps, leases, cancel, results and the audit trail."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from core.errors import StorageError
from core.fields import MASK
from core.integrations import leases
from core.integrations.check_all import CheckAll
from core.integrations.checks import CheckAllScope, CheckOutcome
from core.models import AuditEvent, Integration, utcnow
from core.ratelimit import RateLimitedError
from core.results import TestResult
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


def new_check_all(ctx, concurrency=4, per_host=2) -> CheckAll:
    return CheckAll(ctx.integrations, ctx.factory, ctx.limiter, concurrency, per_host)


def test_checks_every_active_integration_within_both_caps(ctx, owner, hosts):
    views = [add(ctx, owner, hosts.urls[i % 4], f"crm {i}") for i in range(24)]
    inactive = add(ctx, owner, hosts.urls[0], "switched off")
    ctx.integrations.set_active(owner, inactive.id, False)
    seen = []

    summary = new_check_all(ctx).run(owner, on_progress=seen.append)

    assert (summary.progress.total, summary.progress.done, summary.progress.connected) == (24, 24, 24)
    assert not summary.failing and not summary.progress.cancelled
    assert summary.busiest_host <= 2
    assert all(c["most_at_once"] <= 2 for c in hosts.stats().values())
    assert sum(c["served"] for c in hosts.stats().values()) == 24  # the inactive one was not called
    assert max(p.running for p in seen) <= 4
    for view in views:
        stored = ctx.integrations.get(owner, view.id)
        assert stored.status == "connected" and stored.last_checked_at is not None
        assert stored.version == view.version  # a check is not an edit
    assert ctx.integrations.get(owner, inactive.id).status == "unknown"
    with ctx.factory() as session:
        assert session.scalar(select(Integration.id).where(Integration.check_lease_holder.is_not(None))) is None
        tests = session.scalars(select(AuditEvent).where(AuditEvent.action == "integration.test")).all()
        runs = session.scalars(select(AuditEvent).where(AuditEvent.action == "integration.check_all")).all()
    assert len(tests) == 24 and {t.outcome for t in tests} == {"success"}
    assert len(runs) == 1 and runs[0].details["checked"] == 24
    assert TOKEN not in json.dumps([t.details for t in tests + runs])


def test_failures_are_stored_with_their_message_and_make_the_run_failing(ctx, owner, hosts):
    hosts.failing.add("127.0.0.2")
    good = add(ctx, owner, hosts.urls[0], "good")
    bad = add(ctx, owner, hosts.urls[1], "bad")

    summary = new_check_all(ctx).run(owner)

    assert summary.failing and summary.progress.failed == 1
    assert [i for i, _ in summary.failures] == [bad.id]
    assert ctx.integrations.get(owner, good.id).status == "connected"
    stored = ctx.integrations.get(owner, bad.id)
    assert stored.status == "error" and "401" in (stored.status_message or "") + summary.failures[0][1]
    assert "Checked 2 of 2: 1 connected, 1 failing." in summary.line()


def test_an_integration_checked_elsewhere_is_skipped_not_checked_twice(ctx, owner, hosts):
    busy = add(ctx, owner, hosts.urls[0], "busy")
    free = add(ctx, owner, hosts.urls[1], "free")
    other_process = leases.new_holder()
    with ctx.factory.begin() as session:
        assert [row[0] for row in leases.claim(session, [busy.id], other_process)] == [busy.id]

    summary = new_check_all(ctx).run(owner)
    single = ctx.integrations.test(owner, busy.id)

    assert (summary.progress.busy, summary.progress.done) == (1, 1)
    assert "1 skipped (being checked elsewhere)" in summary.line()
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
    first = leases.new_holder()
    claimed = ctx.integrations.claim_checks([view.id], first)
    result = ctx.integrations.run_stored_test("CUSTOM", view.id, claimed[view.id][1])
    with ctx.factory.begin() as session:  # the lease expired and another check took it meanwhile
        session.execute(update(Integration).where(Integration.id == view.id).values(check_lease_holder="someone-else"))
    ctx.integrations.record_checks(owner, first, [CheckOutcome(view.id, "CUSTOM", result)])
    assert ctx.integrations.get(owner, view.id).status == "unknown"


def test_cancel_stops_starting_checks_and_frees_every_lease(ctx, owner, hosts):
    for i in range(40):
        add(ctx, owner, hosts.urls[i % 4], f"crm {i}")
    cancel = threading.Event()

    def stop_after_first(progress):
        if progress.done >= 1:
            cancel.set()

    summary = new_check_all(ctx, concurrency=2, per_host=1).run(owner, on_progress=stop_after_first, cancel=cancel)

    assert summary.progress.cancelled
    assert 1 <= summary.progress.done < 40
    assert "Cancelled." in summary.line() and "not checked" in summary.line()
    with ctx.factory() as session:
        assert session.scalar(select(Integration.id).where(Integration.check_lease_holder.is_not(None))) is None
        checked = session.scalars(select(Integration.id).where(Integration.last_checked_at.is_not(None))).all()
    assert len(checked) == summary.progress.done


def test_members_check_their_own_and_admins_choose_a_scope(ctx, owner, admin, member, hosts):
    mine = add(ctx, owner, hosts.urls[0], "olga's")
    admins = add(ctx, admin, hosts.urls[1], "root's")
    check_all = new_check_all(ctx)

    assert [t.integration_id for t in check_all.targets(owner, CheckAllScope(everyone=True))] == [mine.id]
    assert [t.integration_id for t in check_all.targets(admin)] == [admins.id]
    assert {t.integration_id for t in check_all.targets(admin, CheckAllScope(everyone=True))} == {mine.id, admins.id}
    assert [t.integration_id for t in check_all.targets(admin, CheckAllScope(everyone=True, tier="ENTERPRISE"))] == [
        mine.id,
        admins.id,
    ]
    assert check_all.targets(admin, CheckAllScope(everyone=True, provider="HUBSPOT")) == []
    assert check_all.targets(member) == []
    assert {t.host for t in check_all.targets(admin, CheckAllScope(everyone=True))} == {"127.0.0.1", "127.0.0.2"}


def test_check_all_runs_are_rate_limited_per_person(ctx, owner):
    check_all = new_check_all(ctx)
    for _ in range(10):
        check_all.run(owner)
    with pytest.raises(RateLimitedError, match="Too many check-all runs"):
        check_all.run(owner)


def test_stale_integrations_are_marked_and_counted(ctx, owner, hosts):
    old = add(ctx, owner, hosts.urls[0], "old")
    fresh = add(ctx, owner, hosts.urls[1], "fresh")
    with ctx.factory.begin() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == old.id)
            .values(last_checked_at=utcnow() - ctx.integrations.stale_after - timedelta(minutes=1))
        )
    assert ctx.integrations.get(owner, old.id).stale
    assert not ctx.integrations.get(owner, fresh.id).stale  # never checked, but new
    assert ctx.integrations.stats(owner).stale == 1
    ctx.integrations.set_active(owner, old.id, False)
    assert not ctx.integrations.get(owner, old.id).stale  # switched off: nothing to be stale about
    new_check_all(ctx).run(owner)
    assert ctx.integrations.stats(owner).stale == 0


def test_testing_the_edit_form_of_a_saved_integration_takes_its_lease_too(ctx, owner, hosts):
    view = add(ctx, owner, hosts.urls[0], "edited")
    other = leases.new_holder()
    with ctx.factory.begin() as session:
        leases.claim(session, [view.id], other)
    form = {"apiEndpoint": hosts.urls[0], "credentials": MASK}  # the stored secret, as an edit form sends it
    refused = ctx.integrations.test_configuration(owner, "CUSTOM", {**view.configuration, **form}, view.id)
    assert refused.error == "busy" and hosts.stats()["127.0.0.1"]["served"] == 0
    ctx.integrations.release_checks([view.id], other)
    assert ctx.integrations.test_configuration(owner, "CUSTOM", {**view.configuration, **form}, view.id).success
    with ctx.factory() as session:  # the form's test let go of its lease
        assert session.get(Integration, view.id).check_lease_holder is None


def test_two_runs_at_once_share_the_caps(ctx, owner, other_member, hosts):
    other = ctx.users.create(None, "pete", "Pete", "pete@example.com", "pete-password-1", "member", "ENTERPRISE")
    for n in range(8):
        add(ctx, owner, hosts.urls[0], f"olga {n}")
        add(ctx, other.actor(), hosts.urls[0], f"pete {n}")
    check_all = new_check_all(ctx, concurrency=4, per_host=2)
    summaries = []
    runs = [threading.Thread(target=lambda a=a: summaries.append(check_all.run(a))) for a in (owner, other.actor())]
    for run in runs:
        run.start()
    for run in runs:
        run.join(30)
    assert [s.progress.done for s in summaries] == [8, 8]
    assert hosts.stats()["127.0.0.1"]["most_at_once"] <= 2  # not 2 per run: 2 for the host
    assert check_all.running == 0 and not check_all.running_per_host


def test_a_database_failure_stops_the_run_with_the_error_and_frees_the_workers(ctx, owner, hosts, monkeypatch):
    for n in range(40):
        add(ctx, owner, hosts.urls[n % 4], f"crm {n}")
    real_claim = ctx.integrations.claim_checks
    calls = []

    def claim_then_fail(ids, holder):
        calls.append(len(ids))
        if len(calls) > 1:
            raise OperationalError("UPDATE integrations", {}, Exception("database is locked"))
        return real_claim(ids, holder)

    monkeypatch.setattr(ctx.integrations, "claim_checks", claim_then_fail)
    check_all = new_check_all(ctx, concurrency=2, per_host=1)
    with pytest.raises(StorageError, match="results stored before that are kept"):
        check_all.run(owner)
    assert check_all.running == 0  # every worker stopped
    with ctx.factory() as session:  # what ran was stored and its leases freed; nothing is left leased
        assert session.scalar(select(Integration.id).where(Integration.check_lease_holder.is_not(None))) is None
        assert session.scalars(select(Integration.id).where(Integration.last_checked_at.is_not(None))).all()


def test_a_failing_result_write_also_stops_the_run_with_a_sentence(ctx, owner, hosts, monkeypatch):
    for n in range(6):
        add(ctx, owner, hosts.urls[n % 4], f"crm {n}")

    def refuse(*_args):
        raise OperationalError("UPDATE integrations", {}, Exception("disk I/O error"))

    monkeypatch.setattr(ctx.integrations, "record_checks", refuse)
    check_all = new_check_all(ctx)
    with pytest.raises(StorageError, match="stopped answering"):
        check_all.run(owner)
    assert check_all.running == 0 and not check_all.running_per_host


def test_a_check_whose_lease_ran_out_in_the_queue_is_skipped_not_run_twice(ctx, owner, monkeypatch):
    # One slow host and one check at a time on it: a run leases 16 checks ahead at once, and the last of
    # them wait in the queue (about 16 x 0.15 s) for far longer than a 1-second lease lasts.
    hosts = SlowHosts(1, delay=0.15).start()
    try:
        views = [add(ctx, owner, hosts.urls[0], f"queued {n}") for n in range(16)]
        ids = [v.id for v in views]
        monkeypatch.setattr(leases, "lease_time", lambda _policy: timedelta(seconds=1))
        other = leases.new_holder()  # another process, checking whatever lease it finds expired or free
        other_message = "checked by the other process"
        taken_by_other: set[int] = set()
        starts: list[tuple[int, str | None, bool]] = []  # (id, lease holder, lease still running) at each start
        real_run = ctx.integrations.run_stored_test

        def run_and_note(provider_key, integration_id, stored):
            with ctx.factory() as session:
                row = session.get(Integration, integration_id)
                until = row.check_lease_until
                starts.append((integration_id, row.check_lease_holder, until is not None and until > utcnow()))
            return real_run(provider_key, integration_id, stored)

        monkeypatch.setattr(ctx.integrations, "run_stored_test", run_and_note)
        finished = threading.Event()

        def other_process():  # starts once the run has leased its checks, so it can only take expired leases
            while not starts and not finished.wait(0.01):
                pass
            while not finished.wait(0.05):
                claimed = ctx.integrations.claim_checks([i for i in ids if i not in taken_by_other], other)
                if claimed:
                    taken_by_other.update(claimed)
                    result = TestResult(False, other_message, error=other_message)
                    ctx.integrations.record_checks(owner, other, [CheckOutcome(i, "CUSTOM", result) for i in claimed])

        thread = threading.Thread(target=other_process, daemon=True)
        thread.start()
        try:
            summary = new_check_all(ctx, concurrency=4, per_host=1).run(owner)
        finally:
            finished.set()
            thread.join(10)

        run_holders = {holder for _, holder, _ in starts}
        assert len(run_holders) == 1 and other not in run_holders and None not in run_holders
        assert all(running for _, _, running in starts), "a check started on an expired lease"
        assert taken_by_other, "the other process never found an expired lease: the test proved nothing"
        assert summary.progress.busy >= 1 and "skipped (being checked elsewhere)" in summary.line()
        assert summary.progress.done == len(starts) == hosts.stats()["127.0.0.1"]["served"]
        assert summary.progress.done + summary.progress.busy == 16
        for integration_id in taken_by_other:  # the other's results stand: the run never wrote over them
            assert ctx.integrations.get(owner, integration_id).status_message == other_message
    finally:
        hosts.stop()
