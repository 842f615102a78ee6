"""Check history: recent checks, uptime across the retention boundary, p50/p95, the daily series, rollups
and pruning, on SQLite or on TEST_DATABASE_URL's database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.integrations.history import HistoryService, retention_cutoff
from core.models import CheckRecord, CheckRollup
from tests.factories import add_check_record, add_check_records, add_integration

NOW = datetime(2026, 6, 30, 12, 0, 0)


@pytest.fixture
def history(ctx):
    return HistoryService(ctx.factory, retention_days=10)


@pytest.fixture
def integration(ctx, owner):
    return add_integration(ctx, owner, "Acme CRM")


def checks_at(integration_id, day_offsets, success=True, latency=100):
    """One check per offset (days before NOW, may be fractional)."""
    return [
        dict(integration_id=integration_id, at=NOW - timedelta(days=d), success=success, latency_ms=latency)
        for d in day_offsets
    ]


def rows(ctx, model):
    with ctx.factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_recent_is_newest_first_limited_and_only_this_integration(ctx, owner, history, integration):
    other = add_integration(ctx, owner, "Other")
    for minutes in range(60):
        add_check_record(ctx, integration, NOW - timedelta(minutes=minutes), latency_ms=minutes, http_status=200)
    add_check_record(ctx, other, NOW + timedelta(minutes=5), success=False, code="28P01", message="bad password")
    recent = history.recent(integration, limit=50)
    assert len(recent) == 50
    assert [c.latency_ms for c in recent[:3]] == [0, 1, 2]
    assert recent[0].status_or_code == "HTTP 200"
    [theirs] = history.recent(other)
    assert (theirs.success, theirs.status_or_code, theirs.message) == (False, "28P01", "bad password")


def test_uptime_is_none_without_checks_and_counts_the_window(ctx, history, integration):
    assert history.uptime(integration, 7, NOW) is None
    add_check_records(ctx, checks_at(integration, [0.1, 0.2, 1, 2]) + checks_at(integration, [3], success=False))
    add_check_records(ctx, checks_at(integration, [8, 9], success=False))  # outside 7 days
    assert history.uptime(integration, 7, NOW) == pytest.approx(4 / 5)
    assert history.uptime(integration, 10, NOW) == pytest.approx(4 / 7)


def test_uptime_across_the_retention_boundary_reads_rollups_beyond_it(ctx, history, integration):
    # 30 days: one success a day, a failure every 5th day; retention 10 days.
    for offset in range(30):
        add_check_records(ctx, checks_at(integration, [offset + 0.25], success=offset % 5 != 0))
    before = history.uptime(integration, 30, NOW)
    assert before == pytest.approx(24 / 30)
    report = history.prune(NOW)
    assert report.cutoff == retention_cutoff(NOW, 10) == datetime(2026, 6, 20)
    assert report.deleted > 0 and report.days_rolled_up > 0
    with ctx.factory() as session:
        oldest = session.scalar(select(func.min(CheckRecord.at)))
    assert oldest >= report.cutoff
    # The same answer from rollups plus raw rows, nothing counted twice or lost.
    assert history.uptime(integration, 30, NOW) == pytest.approx(before)
    assert history.uptime(integration, 7, NOW) == pytest.approx(5 / 7)  # failures on days 0 and 5
    # A second prune finds nothing to do, and reads stay the same.
    again = history.prune(NOW)
    assert (again.deleted, again.rollup_rows) == (0, 0)
    assert history.uptime(integration, 30, NOW) == pytest.approx(before)


def test_prune_deletes_only_rows_older_than_retention(ctx, owner, history, integration):
    other = add_integration(ctx, owner, "Other")
    add_check_records(ctx, checks_at(integration, [0.5, 5, 9.4]) + checks_at(other, [1]))
    add_check_records(ctx, checks_at(integration, [11, 12, 40]) + checks_at(other, [15, 15.1]))
    report = history.prune(NOW, batch=2)  # several batches
    assert report.deleted == 5
    assert rows(ctx, CheckRecord) == 4
    with ctx.factory() as session:
        kept = sorted(session.scalars(select(CheckRecord.at)))
    assert all(at >= datetime(2026, 6, 20) for at in kept)
    # Each old day with checks became one rollup row per integration.
    with ctx.factory() as session:
        rollups = {(r.integration_id, r.day): (r.checks, r.failures) for r in session.scalars(select(CheckRollup))}
    assert rollups == {
        (integration, date(2026, 6, 19)): (1, 0),
        (integration, date(2026, 6, 18)): (1, 0),
        (integration, date(2026, 5, 21)): (1, 0),
        (other, date(2026, 6, 15)): (2, 0),
    }


def test_prune_with_nothing_old_changes_nothing(ctx, history, integration):
    add_check_records(ctx, checks_at(integration, [0, 1, 2]))
    report = history.prune(NOW, retention_days=30)
    assert (report.days_rolled_up, report.rollup_rows, report.deleted) == (0, 0, 0)
    assert rows(ctx, CheckRecord) == 3 and rows(ctx, CheckRollup) == 0


def test_rollup_is_idempotent_and_replaces_the_day(ctx, owner, history, integration):
    day = date(2026, 6, 1)
    noon = datetime(2026, 6, 1, 12)
    add_check_records(
        ctx,
        [
            dict(integration_id=integration, at=noon, success=True, latency_ms=100),
            dict(integration_id=integration, at=noon + timedelta(hours=1), success=True, latency_ms=300),
            dict(integration_id=integration, at=noon + timedelta(hours=2), success=False, latency_ms=9000),
            dict(integration_id=integration, at=noon + timedelta(days=1), success=False),  # the next day
        ],
    )
    assert history.rollup(day) == 1
    assert history.rollup(day) == 1
    with ctx.factory() as session:
        [row] = session.scalars(select(CheckRollup)).all()
    # The failed check's latency (a timeout) is not part of the latency figures.
    assert (row.day, row.checks, row.failures, row.latency_ms_total, row.latency_ms_max) == (day, 3, 1, 400, 300)
    add_check_record(ctx, integration, noon + timedelta(hours=3), success=False)
    history.rollup(day)
    with ctx.factory() as session:
        [row] = session.scalars(select(CheckRollup)).all()
    assert (row.checks, row.failures) == (4, 2)


def test_rollup_keeps_a_day_whose_raw_rows_are_gone(ctx, history, integration):
    add_check_records(ctx, checks_at(integration, [20.3, 20.4]))
    history.prune(NOW)
    assert rows(ctx, CheckRecord) == 0 and rows(ctx, CheckRollup) == 1
    assert history.rollup((NOW - timedelta(days=20.3)).date()) == 0
    assert rows(ctx, CheckRollup) == 1


def test_latency_percentiles_on_known_data(ctx, owner, history, integration):
    assert history.latency(integration, 7, NOW) == (None, None)
    # 1..100 ms, shuffled in time; failures and checks outside the window do not count.
    order = [(n * 37) % 100 + 1 for n in range(100)]
    add_check_records(
        ctx,
        [
            dict(integration_id=integration, at=NOW - timedelta(minutes=i), success=True, latency_ms=ms)
            for i, ms in enumerate(order)
        ],
    )
    add_check_records(ctx, checks_at(integration, [0.01, 0.02], success=False, latency=60_000))
    add_check_records(ctx, checks_at(integration, [8], latency=99_999))
    assert history.latency(integration, 7, NOW) == (50, 95)
    other = add_integration(ctx, owner, "One")
    add_check_record(ctx, other, NOW, latency_ms=42)
    assert history.latency(other, 7, NOW) == (42, 42)


def test_daily_series_has_every_day_and_reads_rollups_for_pruned_days(ctx, history, integration):
    add_check_records(
        ctx,
        checks_at(integration, [0.1], latency=100)
        + checks_at(integration, [0.2], latency=300)
        + checks_at(integration, [0.3], success=False, latency=None)
        + checks_at(integration, [20.1, 20.2], latency=50),
    )
    history.prune(NOW)
    series = history.daily(integration, 30, NOW)
    assert len(series) == 30 and series[-1].day == NOW.date() and series[0].day == date(2026, 6, 1)
    today = series[-1]
    assert (today.checks, today.failures, today.avg_latency_ms) == (3, 1, pytest.approx(200))
    pruned = next(p for p in series if p.day == (NOW - timedelta(days=20.1)).date())
    assert (pruned.checks, pruned.failures, pruned.avg_latency_ms) == (2, 0, pytest.approx(50))
    assert sum(p.checks for p in series) == 5


def test_days_out_of_range_are_refused(history, integration):
    with pytest.raises(ValueError, match="Choose between"):
        history.uptime(integration, 0, NOW)
