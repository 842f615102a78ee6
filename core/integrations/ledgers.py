"""The statistics ledgers: counts that Statistics and Overview read instead of every integration and audit row.

Database triggers (migration 0018) add a +1 / -1 row on every write of an integration, of an owner's tier
and of a connection test's audit event, in the writer's own transaction, whatever code wrote it: so no
write path can forget them, and a rolled-back write takes its rows with it. The rows are only ever added
(no shared counter row is locked, so concurrent check batches never wait for or deadlock on one another);
`compact` folds each key's rows into one, and every read sums what is there. Three ledgers:

- stat_integration_counts: integrations per (owner tier, provider, type, status, health, active);
- stat_integration_freshness: active integrations per hour of their last check (creation if never), for
  "stale" (active, not checked since a cut-off): the hours after the cut-off's hour from the ledger, the
  cut-off's own hour read live over ix_integrations_freshness;
- stat_check_days: connection tests that ran per day (UTC), owner tier and provider at the time of the
  test; past days never change.

`rebuild` recounts all of them from the rows (the CLI's `statistics rebuild`, the migration, `bulk_load`);
`differences` compares them with a full recount (`statistics verify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast as cast_type

from sqlalchemy import Connection, Date, Table, and_, case, cast, func, insert, literal_column, select, text
from sqlalchemy.orm import Session

from core.integrations import ledger_triggers
from core.models import AuditEvent, Integration, StatCheckDay, StatIntegrationCount, StatIntegrationFreshness, User

EPOCH = datetime(1970, 1, 1)
TEST_ACTION = "integration.test"
COUNT_KEY = ("tier", "provider", "type", "status", "health", "is_active")
FRESH_KEY = ("hour", "tier", "provider", "type", "status")
DAY_KEY = ("day", "tier", "provider")
LEDGERS = {  # table -> (key columns, summed columns)
    "stat_integration_counts": (COUNT_KEY, ("n",)),
    "stat_integration_freshness": (FRESH_KEY, ("n",)),
    "stat_check_days": (DAY_KEY, ("passed", "failed")),
}

# SQLAlchemy types __table__ as any FromClause; a declarative class with a __tablename__ has a Table.
TABLES: dict[str, Table] = {
    model.__tablename__: cast_type(Table, model.__table__)
    for model in (StatIntegrationCount, StatIntegrationFreshness, StatCheckDay)
}


def hour_of(moment: datetime) -> int:
    """The hour (since the epoch, UTC) a naive UTC time falls in, as the triggers compute it."""
    return (moment - EPOCH) // timedelta(hours=1)


def _hour_sql(dialect: str, table: str = "integrations") -> str:
    if dialect == "postgresql":
        return f"floor(extract(epoch FROM coalesce({table}.last_checked_at, {table}.created_at)) / 3600)::bigint"
    return (
        f"(CAST(strftime('%s', substr(coalesce({table}.last_checked_at, {table}.created_at), 1, 13) || ':00:00')"
        " AS INTEGER) / 3600)"
    )


def freshness():
    """The time "stale" is counted from; the expression ix_integrations_freshness indexes."""
    return func.coalesce(Integration.last_checked_at, Integration.created_at)


# ----- recount (from every row: for rebuild and verify only) ----------------------------------------------


def _recount_queries(dialect: str):
    hour = literal_column(_hour_sql(dialect)).label("hour")
    counts = (
        select(
            User.tier,
            Integration.provider,
            Integration.type,
            Integration.status,
            Integration.health,
            Integration.is_active,
            func.count().label("n"),
        )
        .join(User, User.id == Integration.owner_id)
        .group_by(
            User.tier,
            Integration.provider,
            Integration.type,
            Integration.status,
            Integration.health,
            Integration.is_active,
        )
    )
    fresh = (
        select(hour, User.tier, Integration.provider, Integration.type, Integration.status, func.count().label("n"))
        .join(User, User.id == Integration.owner_id)
        .where(Integration.is_active.is_(True))
        .group_by(hour, User.tier, Integration.provider, Integration.type, Integration.status)
    )
    day = cast(func.date(AuditEvent.at), Date) if dialect == "postgresql" else func.date(AuditEvent.at)
    none = literal_column("''")  # a literal, not a parameter: the GROUP BY must repeat the same expression
    tier, provider = func.coalesce(User.tier, none), func.coalesce(Integration.provider, none)
    days = (
        select(
            day.label("day"),
            tier.label("tier"),
            provider.label("provider"),
            func.sum(case((AuditEvent.outcome == "success", 1), else_=0)).label("passed"),
            func.sum(case((AuditEvent.outcome == "failure", 1), else_=0)).label("failed"),
        )
        .select_from(AuditEvent)
        .outerjoin(Integration, Integration.id == AuditEvent.integration_id)
        .outerjoin(User, User.id == Integration.owner_id)
        .where(
            AuditEvent.action == TEST_ACTION,
            AuditEvent.outcome.in_(("success", "failure")),
            AuditEvent.integration_id.is_not(None),
        )
        .group_by(day, tier, provider)
    )
    return {"stat_integration_counts": counts, "stat_integration_freshness": fresh, "stat_check_days": days}


def rebuild(conn: Connection) -> dict[str, int]:
    """Empty the ledgers and count everything again, in the caller's transaction; rows written per ledger.

    On PostgreSQL the counted tables are locked against writes (SHARE) and the ledgers against a fold until
    the transaction ends, so no write lands between the recount and the ledger it would have moved.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("LOCK TABLE users, integrations, audit_events IN SHARE MODE"))
        # And a fold under way finishes first (or waits): its sums must not land beside the recount.
        conn.execute(text(f"LOCK TABLE {', '.join(LEDGERS)} IN EXCLUSIVE MODE"))
    written = {}
    for name, query in _recount_queries(dialect).items():
        key, values = LEDGERS[name]
        table = TABLES[name]
        conn.execute(table.delete())
        conn.execute(insert(table).from_select([*key, *values], query))
        written[name] = int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
    return written


@contextmanager
def bulk_load(conn: Connection) -> Iterator[None]:
    """Write many rows in the caller's transaction without a ledger row per row: the triggers are dropped
    for the block, created again after it and the ledgers recounted once, all in one transaction (a failure
    keeps the triggers). The benchmark generator's loads use it."""
    for table in TABLES.values():  # DML first: on SQLite it opens the transaction the DDL then joins
        conn.execute(table.delete())
    ledger_triggers.drop(conn)
    yield
    ledger_triggers.create(conn)
    rebuild(conn)


def recount(conn: Connection) -> dict[str, dict[tuple, tuple[int, ...]]]:
    found = {}
    for table, query in _recount_queries(conn.dialect.name).items():
        width = len(LEDGERS[table][0])
        found[table] = {
            _key(row[:width]): tuple(int(v) for v in row[width:]) for row in conn.execute(query) if any(row[width:])
        }
    return found


def summed(conn: Connection) -> dict[str, dict[tuple, tuple[int, ...]]]:
    found = {}
    for table, (key, values) in LEDGERS.items():
        sums = ", ".join(f"sum({v})" for v in values)
        rows = conn.execute(text(f"SELECT {', '.join(key)}, {sums} FROM {table} GROUP BY {', '.join(key)}"))
        found[table] = {
            _key(row[: len(key)]): tuple(int(v) for v in row[len(key) :]) for row in rows if any(row[len(key) :])
        }
    return found


def _key(values: Sequence) -> tuple:
    """Comparable keys across dialects: booleans as bool, days as date (SQLite returns text for both)."""
    out = []
    for value in values:
        if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
            out.append(date.fromisoformat(value))
        elif isinstance(value, datetime):
            out.append(value.date())
        else:
            out.append(value)
    return tuple(out)


def _day_totals(rows: dict[tuple, tuple[int, ...]]) -> dict[date, tuple[int, int]]:
    totals: dict[date, tuple[int, int]] = {}
    for (day, _tier, _provider), (passed, failed) in rows.items():
        was = totals.get(day, (0, 0))
        totals[day] = (was[0] + passed, was[1] + failed)
    return {day: t for day, t in totals.items() if any(t)}


def differences(conn: Connection) -> list[str]:
    """What the ledgers say that a full recount does not, one line each; [] when they agree.

    The checks of a day are compared as day totals: the ledger keeps the tier and provider an integration had
    when it was tested, which a recount cannot know for one deleted or moved since.
    """
    kept, counted = summed(conn), recount(conn)
    lines = []
    for table in ("stat_integration_counts", "stat_integration_freshness"):
        for key in sorted(set(kept[table]) | set(counted[table]), key=repr):
            if kept[table].get(key) != counted[table].get(key):
                lines.append(
                    f"{table} {key}: kept {kept[table].get(key, (0,))[0]}, counted {counted[table].get(key, (0,))[0]}"
                )
    kept_days, counted_days = _day_totals(kept["stat_check_days"]), _day_totals(counted["stat_check_days"])
    for day in sorted(set(kept_days) | set(counted_days)):
        if kept_days.get(day) != counted_days.get(day):
            lines.append(
                f"stat_check_days {day}: kept (passed, failed) {kept_days.get(day, (0, 0))}, "
                f"counted {counted_days.get(day, (0, 0))}"
            )
    return lines


# ----- folding -------------------------------------------------------------------------------------------


def compact(conn: Connection) -> dict[str, int]:
    """Fold each ledger's rows into one per key (keys summing to nothing dropped); rows left per ledger.

    Safe beside concurrent writers and another compaction: on PostgreSQL one statement deletes the rows it
    sees and adds their sums (rows committed meanwhile stay, to be folded next time); on SQLite the fold runs
    under the database's single write lock, taken by its first statement.
    """
    left = {}
    for table, (key, values) in LEDGERS.items():
        keys, sums = ", ".join(key), ", ".join(f"sum({v})" for v in values)
        nonzero = " OR ".join(f"sum({v}) <> 0" for v in values)
        columns = ", ".join((*key, *values))
        if conn.dialect.name == "postgresql":
            result = conn.execute(
                text(
                    f"WITH moved AS (DELETE FROM {table} RETURNING {columns}) "
                    f"INSERT INTO {table} ({columns}) SELECT {keys}, {sums} FROM moved GROUP BY {keys} HAVING {nonzero}"
                )
            )
        else:
            result = conn.execute(
                text(
                    f"INSERT INTO {table} ({columns}) "
                    f"SELECT {keys}, {sums} FROM {table} GROUP BY {keys} HAVING {nonzero}"
                )
            )
            added = result.rowcount or 0
            if added:
                # The sums got the highest rowids (max + 1 each), after every row they were summed from.
                first = int(result.lastrowid or 0) - added + 1
                conn.execute(text(f"DELETE FROM {table} WHERE id < :first"), {"first": first})
            else:
                conn.execute(text(f"DELETE FROM {table}"))
        left[table] = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
    return left


# ----- reads for the pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CountKey:
    tier: str
    provider: str
    type: str
    status: str


def _where(model, tiers: Iterable[str], providers: Iterable[str], statuses: Iterable[str] = ()) -> list:
    conditions = []
    if tiers := tuple(tiers):
        conditions.append(model.tier.in_(tiers))
    if providers := tuple(providers):
        conditions.append(model.provider.in_(providers))
    if statuses := tuple(statuses):
        conditions.append(model.status.in_(statuses))
    return conditions


def counts(
    session: Session,
    tiers: Iterable[str] = (),
    providers: Iterable[str] = (),
    statuses: Iterable[str] = (),
    by: Sequence[str] = COUNT_KEY,
    health: str | None = None,
    active: bool | None = None,
) -> list[tuple]:
    """Integrations per key of the `by` columns (of COUNT_KEY, in that order), the count last, for every key
    with any; `by=()` gives one row, the total. Grouped in SQL: a page asks only for the columns it shows,
    so it reads a row per key it shows, not one per key of the ledger."""
    ledger = StatIntegrationCount
    unknown = set(by) - set(COUNT_KEY)
    if unknown:
        raise ValueError(f"not a ledger key column: {sorted(unknown)}")
    columns = [getattr(ledger, name) for name in by]
    conditions = _where(ledger, tiers, providers, statuses)
    if health is not None:
        conditions.append(ledger.health == health)
    if active is not None:
        conditions.append(ledger.is_active.is_(active))
    summed_n = func.sum(ledger.n)
    query = select(*columns, summed_n).where(*conditions).group_by(*columns).having(summed_n != 0)
    if not columns:  # no GROUP BY: one row, whose sum is NULL when nothing matched
        return [(int(session.scalar(select(func.coalesce(summed_n, 0)).where(*conditions)) or 0),)]
    active_at = by.index("is_active") if "is_active" in by else -1
    return [
        (*(bool(v) if i == active_at else v for i, v in enumerate(row[:-1])), int(row[-1]))
        for row in session.execute(query)
    ]


def total(
    session: Session,
    tiers: Iterable[str] = (),
    providers: Iterable[str] = (),
    statuses: Iterable[str] = (),
    health: str | None = None,
    active: bool | None = None,
) -> int:
    """How many integrations match counts' filters: one summed row."""
    return int(counts(session, tiers, providers, statuses, by=(), health=health, active=active)[0][0])


def fresh(
    session: Session,
    cutoff: datetime,
    tiers: Iterable[str] = (),
    providers: Iterable[str] = (),
    statuses: Iterable[str] = (),
) -> dict[CountKey, int]:
    """Active integrations checked (or, never checked, created) at or after cutoff, per key.

    The hours after the cut-off's from the ledger; the rest of the cut-off's own hour read live (an index
    range of one hour's integrations at most).
    """
    tiers, providers, statuses = tuple(tiers), tuple(providers), tuple(statuses)
    ledger = StatIntegrationFreshness
    after_cut_hour, in_cut_hour = _fresh_windows(cutoff)
    total = func.sum(ledger.n)
    from_ledger = (
        select(ledger.tier, ledger.provider, ledger.type, ledger.status, total)
        .where(after_cut_hour, *_where(ledger, tiers, providers, statuses))
        .group_by(ledger.tier, ledger.provider, ledger.type, ledger.status)
        .having(total != 0)
    )
    live = (
        select(User.tier, Integration.provider, Integration.type, Integration.status, func.count())
        .join(User, User.id == Integration.owner_id)
        .where(in_cut_hour, *_where(User, tiers, ()), *_where(Integration, (), providers, statuses))
        .group_by(User.tier, Integration.provider, Integration.type, Integration.status)
    )
    found: dict[CountKey, int] = {}
    for query in (from_ledger, live):
        for tier, provider, kind, status, n in session.execute(query):
            key = CountKey(tier, provider, kind, status)
            found[key] = found.get(key, 0) + int(n)
    return found


def fresh_total(session: Session, cutoff: datetime) -> int:
    """Every active integration checked (or, never checked, created) at or after cutoff: fresh() summed in
    SQL, two rows read instead of one per key and hour."""
    after_cut_hour, in_cut_hour = _fresh_windows(cutoff)
    from_ledger = select(func.coalesce(func.sum(StatIntegrationFreshness.n), 0)).where(after_cut_hour)
    live = select(func.count()).select_from(Integration).where(in_cut_hour)
    return int(session.scalar(from_ledger) or 0) + int(session.scalar(live) or 0)


def _fresh_windows(cutoff: datetime):
    """(the ledger's hours after the cut-off's, the active integrations of the cut-off's own hour at or
    after it): what fresh() and fresh_total() add up."""
    cut_hour = hour_of(cutoff)
    hour_ends = EPOCH + timedelta(hours=cut_hour + 1)
    return (
        StatIntegrationFreshness.hour > cut_hour,
        and_(Integration.is_active.is_(True), freshness() >= cutoff, freshness() < hour_ends),
    )


def check_days(
    session: Session, since: date, until: date, tiers: Iterable[str] = (), providers: Iterable[str] = ()
) -> dict[date, tuple[int, int]]:
    """(passed, failed) connection tests per day from since to until inclusive (days with none left out)."""
    ledger = StatCheckDay
    query = (
        select(ledger.day, func.sum(ledger.passed), func.sum(ledger.failed))
        .where(ledger.day >= since, ledger.day <= until, *_where(ledger, tiers, providers))
        .group_by(ledger.day)
    )
    found = {}
    for day, passed, failed in session.execute(query):
        if passed or failed:
            found[_key((day,))[0]] = (int(passed), int(failed))
    return found


__all__ = [
    "LEDGERS",
    "CountKey",
    "bulk_load",
    "check_days",
    "compact",
    "counts",
    "differences",
    "fresh",
    "fresh_total",
    "freshness",
    "hour_of",
    "rebuild",
    "recount",
    "summed",
    "total",
]
