"""The statistics ledgers (core.integrations.ledgers, kept by migration 0018's triggers) agree with a full
recount after every kind of write, whichever code wrote it; folding keeps the sums; rebuild repairs them;
and Statistics and Overview give the same figures as the full scans they replaced."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import and_, case, delete, func, insert, select, text, update

from core.integrations import leases, ledgers
from core.integrations.checks import CheckOutcome
from core.integrations.statistics import TEST_ACTION, Filters, StatisticsService
from core.models import AuditEvent, Integration, User, utcnow
from core.results import TestResult
from providers import CATALOG
from tests.factories import add_check, add_integration

CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "ledger-unit-token-1"}


def exact(ctx) -> None:
    with ctx.engine.connect() as conn:
        assert ledgers.differences(conn) == []


def rows_in(ctx, table: str) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def kept(ctx):
    with ctx.engine.connect() as conn:
        return ledgers.summed(conn)


def record(ctx, actor, integration_id: int, success: bool) -> None:
    holder = leases.new_holder()
    assert ctx.integrations.claim_checks([integration_id], holder)
    result = TestResult(success, "Connected." if success else "Refused.")
    ctx.integrations.record_checks(actor, holder, [CheckOutcome(integration_id, "CHATWOOT", result)])


def test_every_write_path_keeps_the_ledgers_exact(ctx, admin, member, other_member):
    first = ctx.integrations.create(admin, "One", "CHATWOOT", CONFIG)
    second = ctx.integrations.create(member, "Two", "CHATWOOT", CONFIG)
    exact(ctx)
    assert kept(ctx)["stat_integration_counts"] == {
        ("ENTERPRISE", "CHATWOOT", "CRM", "unknown", "unknown", True): (1,),
        ("FREE", "CHATWOOT", "CRM", "unknown", "unknown", True): (1,),
    }
    ctx.integrations.update(admin, first.id, first.version, name="One renamed")  # no counted field: no ledger row
    exact(ctx)
    record(ctx, admin, first.id, True)  # status, health, freshness hour and a check of today
    record(ctx, admin, second.id, False)
    exact(ctx)
    assert sum(passed for passed, _ in kept(ctx)["stat_check_days"].values()) == 1
    ctx.integrations.pause(admin, first.id)
    exact(ctx)
    ctx.integrations.resume(admin, first.id)
    exact(ctx)
    ctx.users.set_tier(None, "alice", "TEAM")  # the owner's tier moves every one of their integrations
    exact(ctx)
    assert ("TEAM", "CHATWOOT", "CRM", "error", "degraded", True) in kept(ctx)["stat_integration_counts"]
    with ctx.factory.begin() as session:  # a transfer, a raw bulk write: the triggers see every write
        session.execute(update(Integration).where(Integration.id == second.id).values(owner_id=other_member.id))
        session.execute(update(Integration).values(status="unknown", last_checked_at=utcnow() - timedelta(days=3)))
    exact(ctx)
    add_integration(ctx, other_member, "Raw", "HUBSPOT", "CRM", status="error", active=False)
    exact(ctx)
    ctx.integrations.delete(admin, first.id)
    exact(ctx)
    with ctx.factory.begin() as session:  # an account deleted: its integrations go by the cascade
        session.execute(delete(User).where(User.id == other_member.id))
    exact(ctx)
    assert kept(ctx)["stat_integration_counts"] == {}
    assert sum(passed + failed for passed, failed in kept(ctx)["stat_check_days"].values()) == 2  # history stays


def test_a_rolled_back_write_leaves_the_ledgers_as_they_were(ctx, admin):
    ctx.integrations.create(admin, "One", "CHATWOOT", CONFIG)
    before = kept(ctx)
    with pytest.raises(RuntimeError), ctx.factory.begin() as session:
        session.execute(update(Integration).values(status="error"))
        raise RuntimeError("fails after the write")
    assert kept(ctx) == before
    exact(ctx)


def test_folding_keeps_every_sum_and_leaves_one_row_per_key(ctx, admin):
    views = [ctx.integrations.create(admin, f"I{n}", "CHATWOOT", CONFIG) for n in range(4)]
    for view in views:
        record(ctx, admin, view.id, True)
        record(ctx, admin, view.id, False)
    ctx.integrations.delete(admin, views[0].id)
    before = kept(ctx)
    assert rows_in(ctx, "stat_integration_counts") > len(before["stat_integration_counts"])
    with ctx.engine.begin() as conn:
        ledgers.compact(conn)
    assert kept(ctx) == before
    assert rows_in(ctx, "stat_integration_counts") == len(before["stat_integration_counts"])
    assert rows_in(ctx, "stat_check_days") == len(before["stat_check_days"])
    with ctx.engine.begin() as conn:
        ledgers.compact(conn)  # again: nothing to fold, nothing lost
    assert kept(ctx) == before
    exact(ctx)


def test_verify_reports_a_drift_and_rebuild_repairs_it(ctx, admin):
    view = ctx.integrations.create(admin, "One", "CHATWOOT", CONFIG)
    record(ctx, admin, view.id, True)
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM stat_integration_counts"))
        conn.execute(text("UPDATE stat_check_days SET passed = passed + 2"))
        lines = ledgers.differences(conn)
    assert any(line.startswith("stat_integration_counts ('ENTERPRISE', 'CHATWOOT'") for line in lines)
    assert any("stat_check_days" in line and "kept (passed, failed) (3, 0), counted (1, 0)" in line for line in lines)
    with ctx.engine.begin() as conn:
        written = ledgers.rebuild(conn)
    assert written["stat_integration_counts"] == 1
    exact(ctx)


def test_the_hour_agrees_with_the_database_to_the_microsecond(ctx, admin):
    edge = datetime(2026, 3, 10, 10, 59, 59, 999_900)
    view = ctx.integrations.create(admin, "Edge", "CHATWOOT", CONFIG)
    with ctx.factory.begin() as session:
        session.execute(update(Integration).where(Integration.id == view.id).values(last_checked_at=edge))
    assert list(kept(ctx)["stat_integration_freshness"]) == [
        (ledgers.hour_of(edge), "ENTERPRISE", "CHATWOOT", "CRM", "unknown")
    ]
    assert (
        ledgers.hour_of(edge)
        == ledgers.hour_of(datetime(2026, 3, 10, 10))
        != ledgers.hour_of(datetime(2026, 3, 10, 11))
    )
    exact(ctx)


# ----- the figures are those of the full scans they replaced ------------------------------------------------


def old_counts(ctx, filters: Filters, cutoff: datetime) -> dict:
    """The full scan Statistics ran before the ledgers, kept here as the reference."""
    stale = and_stale(cutoff)
    conditions = []
    if filters.tiers:
        conditions.append(User.tier.in_(filters.tiers))
    if filters.providers:
        conditions.append(Integration.provider.in_(filters.providers))
    if filters.statuses:
        conditions.append(Integration.status.in_(filters.statuses))
    query = (
        select(
            User.tier,
            Integration.provider,
            Integration.type,
            Integration.status,
            func.count(Integration.id),
            func.sum(case((Integration.is_active.is_(True), 1), else_=0)),
            func.sum(case((stale, 1), else_=0)),
        )
        .join(User, Integration.owner_id == User.id)
        .where(*conditions)
        .group_by(User.tier, Integration.provider, Integration.type, Integration.status)
    )
    with ctx.factory() as session:
        return {(t, p, k, s): (int(n), int(a), int(st)) for t, p, k, s, n, a, st in session.execute(query)}


def and_stale(cutoff: datetime):
    return and_(Integration.is_active.is_(True), ledgers.freshness() < cutoff)


def old_trend(ctx, since: datetime, filters: Filters) -> dict:
    day = func.date(AuditEvent.at)
    query = select(
        day,
        func.sum(case((AuditEvent.outcome == "success", 1), else_=0)),
        func.sum(case((AuditEvent.outcome == "failure", 1), else_=0)),
    ).where(
        AuditEvent.action == TEST_ACTION,
        AuditEvent.at >= since,
        AuditEvent.outcome.in_(("success", "failure")),
        AuditEvent.integration_id.is_not(None),
    )
    if filters.tiers or filters.providers:
        matching = select(Integration.id).join(User, User.id == Integration.owner_id)
        if filters.tiers:
            matching = matching.where(User.tier.in_(filters.tiers))
        if filters.providers:
            matching = matching.where(Integration.provider.in_(filters.providers))
        query = query.where(AuditEvent.integration_id.in_(matching))
    with ctx.factory() as session:
        return {str(d)[:10]: (int(ok), int(bad)) for d, ok, bad in session.execute(query.group_by(day)) if ok or bad}


def test_statistics_and_overview_give_the_full_scans_figures_on_a_generated_mix(ctx, admin, member, other_member):
    rng = random.Random(16)
    now = utcnow()
    owners = [admin, member, other_member]
    providers = [("CHATWOOT", "CRM"), ("HUBSPOT", "CRM"), ("POSTGRESQL", "DATABASE")]
    with ctx.factory.begin() as session:
        rows = []
        for n in range(400):
            provider, kind = rng.choice(providers)
            checked = now - timedelta(minutes=rng.randint(0, 60 * 24 * 4)) if rng.random() < 0.8 else None
            rows.append(
                {
                    "owner_id": rng.choice(owners).id,
                    "name": f"G{n}",
                    "type": kind,
                    "provider": provider,
                    "configuration": {},
                    "is_active": rng.random() < 0.8,
                    "status": rng.choice(["connected", "error", "unknown"]),
                    "health": rng.choice(["connected", "failing", "unknown", "degraded"]),
                    "last_checked_at": checked,
                    "created_at": now - timedelta(minutes=rng.randint(0, 60 * 24 * 6)),
                    "updated_at": now,
                }
            )
        session.execute(insert(Integration), rows)
        ids = list(session.scalars(select(Integration.id)))
    for _ in range(300):
        add_check(
            ctx,
            rng.choice(ids),
            now - timedelta(minutes=rng.randint(0, 60 * 24 * 9)),
            rng.choice(["success", "failure", "denied"]),
        )
    exact(ctx)
    for hours in (0.5, 24, 30, 72):
        service = StatisticsService(ctx.factory, CATALOG, stale_after_hours=hours, clock=lambda: now)
        for filters in (
            Filters(),
            Filters(tiers=("FREE",)),
            Filters(providers=("HUBSPOT", "POSTGRESQL")),
            Filters(statuses=("error",)),
            Filters(("STARTER", "ENTERPRISE"), ("CHATWOOT",), ("connected", "unknown")),
        ):
            counts = service.counts(admin, filters)
            expected = old_counts(ctx, filters, now - timedelta(hours=hours))
            assert {
                (r.tier, r.provider, r.type, r.status): (r.total, r.active, r.stale) for r in counts.rows
            } == expected
            assert service.errors(admin, filters).total == sum(v[0] for k, v in expected.items() if k[3] == "error")
            trend = service.trend(admin, Filters(filters.tiers, filters.providers), days=7)
            since = datetime.combine(trend.since, datetime.min.time())
            assert {p.day.isoformat(): (p.passed, p.errors) for p in trend.points if p.checks} == old_trend(
                ctx, since, filters
            )
    overview = ctx.integrations.stats(admin)
    everything = old_counts(ctx, Filters(), now - ctx.integrations.stale_after)
    assert overview.total == sum(v[0] for v in everything.values())
    assert overview.active == sum(v[1] for v in everything.values())
    assert overview.stale == sum(v[2] for v in everything.values())
    assert overview.error == sum(v[0] for k, v in everything.items() if k[3] == "error")
    with ctx.factory() as session:
        health = dict(session.execute(select(Integration.health, func.count()).group_by(Integration.health)).all())
        by_status = session.execute(
            select(Integration.provider, Integration.status, func.count()).group_by(
                Integration.provider, Integration.status
            )
        ).all()
    assert {k: v for k, v in ctx.integrations.health_counts(admin).items() if v} == health
    names = {key: CATALOG.get(key).name for key, _ in providers}
    assert sorted(ctx.integrations.counts_by_provider_and_status(admin)) == sorted(
        (names[p], s, n) for p, s, n in by_status
    )
    # Grouped in SQL by fewer columns, the ledger says what its every key summed says.
    with ctx.factory() as session:
        every_key = ledgers.counts(session)
        for by in (("health",), ("status", "is_active"), ("provider", "status"), ledgers.COUNT_KEY[:4], ()):
            positions = [ledgers.COUNT_KEY.index(column) for column in by]
            summed: dict[tuple, int] = {}
            for row in every_key:
                key = tuple(row[i] for i in positions)
                summed[key] = summed.get(key, 0) + row[-1]
            assert {tuple(row[:-1]): row[-1] for row in ledgers.counts(session, by=by)} == summed
        assert ledgers.total(session, providers=["HUBSPOT"], health="failing", active=True) == sum(
            row[-1] for row in every_key if row[1] == "HUBSPOT" and row[4] == "failing" and row[5]
        )
        for hours in (0.5, 30):
            cutoff = now - timedelta(hours=hours)
            assert ledgers.fresh_total(session, cutoff) == sum(ledgers.fresh(session, cutoff).values())
        with pytest.raises(ValueError):
            ledgers.counts(session, by=("name",))
    # A member's figures are their own, as before.
    mine = ctx.integrations.stats(member)
    assert mine.total == sum(1 for r in rows if r["owner_id"] == member.id)


# ----- who folds and who rebuilds: the engine's tick and the CLI --------------------------------------------


def test_the_engine_folds_the_ledgers_as_the_scheduler(ctx, admin):
    view = ctx.integrations.create(admin, "One", "CHATWOOT", CONFIG)
    for success in (True, False, True):
        record(ctx, admin, view.id, success)
    before = kept(ctx)
    assert rows_in(ctx, "stat_integration_counts") > 1
    ctx.tasks._fold_ledgers()
    assert rows_in(ctx, "stat_integration_counts") == 1 and kept(ctx) == before
    record(ctx, admin, view.id, False)
    ctx.tasks._fold_ledgers()  # within LEDGER_FOLD_SECONDS of the last fold: not again yet
    assert rows_in(ctx, "stat_integration_counts") > 1


def test_the_cli_verifies_rebuilds_and_folds(ctx, database_url, admin):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import TEST_COOKIE_KEY, TEST_KEY

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "INTEGRATION_", "COOKIE_"))}
    env |= {"DATABASE_URL": database_url, "INTEGRATION_ENCRYPTION_KEY": TEST_KEY, "COOKIE_KEY": TEST_COOKIE_KEY}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "statistics", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ctx.integrations.create(admin, "One", "CHATWOOT", CONFIG)
    with ctx.engine.begin() as conn:
        conn.execute(text("INSERT INTO stat_integration_counts (tier, provider, type, status, health, is_active, n) "
                          "VALUES ('FREE', 'HUBSPOT', 'CRM', 'error', 'failing', true, 3)"))  # fmt: skip
    drifted = manage("verify")
    assert drifted.returncode == 1, drifted.stderr
    assert "stat_integration_counts ('FREE', 'HUBSPOT', 'CRM', 'error', 'failing', " in drifted.stdout
    assert "kept 3, counted 0" in drifted.stdout and "statistics rebuild" in drifted.stdout
    rebuilt = manage("rebuild")
    assert rebuilt.returncode == 0 and "stat_integration_counts 1 rows" in rebuilt.stdout, rebuilt.stderr
    agreed = manage("verify", "--json")
    assert agreed.returncode == 0 and json.loads(agreed.stdout) == {"differences": []}
    folded = manage("compact")
    assert folded.returncode == 0 and "Folded the statistics ledgers" in folded.stdout
    exact(ctx)


def test_a_bulk_load_recounts_once_and_keeps_the_triggers(ctx, admin):
    ctx.integrations.create(admin, "Before", "CHATWOOT", CONFIG)
    rows = [
        {"owner_id": admin.id, "name": f"B{n}", "type": "CRM", "provider": "HUBSPOT", "configuration": {}}
        for n in range(50)
    ]
    with ctx.engine.begin() as conn, ledgers.bulk_load(conn):
        conn.execute(insert(Integration), rows)
        assert int(conn.execute(text("SELECT count(*) FROM stat_integration_counts")).scalar() or 0) == 0
    assert rows_in(ctx, "stat_integration_counts") == 2  # recounted: one row per key
    exact(ctx)
    with pytest.raises(RuntimeError), ctx.engine.begin() as conn, ledgers.bulk_load(conn):
        conn.execute(insert(Integration), rows)
        raise RuntimeError("the load fails half-way")
    ctx.integrations.create(admin, "After", "CHATWOOT", CONFIG)  # the triggers are still there
    exact(ctx)
    assert sum(n for (n,) in kept(ctx)["stat_integration_counts"].values()) == 52
