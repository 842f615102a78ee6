"""Check history: the read side of every stored check (core.models.CheckRecord) and its retention.

Raw rows are kept for CHECK_HISTORY_RETENTION_DAYS; prune() first rolls each older day up into one
CheckRollup row per integration, then deletes those raw rows in bounded batches. Reads never load every
row: each query is bounded by one integration and a time window, served by the (integration_id, at) index
(check_history) and the (integration_id, day) primary key (check_rollups), and aggregated by the database.
The SQL is portable: SQLite, PostgreSQL and MariaDB run it unchanged (no percentile functions, no LIMIT
inside IN).

Which rows a read takes: the days up to an integration's newest rollup come from its rollups, later
moments from raw rows. prune() writes a day's rollup before it deletes any of that day's rows and never
recomputes a day that already has one, so a day is counted once, from one source, whatever prune's timing.

Latency is that of successful checks (a failed check's latency is mostly a timeout, and would say nothing
about how fast the service answers); rollups keep the same sum and maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Date, and_, case, delete, exists, func, insert, literal, select
from sqlalchemy.orm import sessionmaker

from core.models import CheckRecord, CheckRollup, utcnow

DEFAULT_RETENTION_DAYS = 90
MAX_DAYS = 3660
# p50/p95 are read over at most this many of the window's newest successful checks: a bounded sort.
MAX_LATENCY_SAMPLES = 20_000
PRUNE_BATCH = 5_000


@dataclass(frozen=True)
class CheckView:
    """One stored check, as the detail page and the CLI show it (the message is already redacted)."""

    at: datetime
    success: bool
    check_class: str
    latency_ms: int | None
    http_status: int | None
    code: str | None
    message: str
    trigger: str

    @property
    def status_or_code(self) -> str:
        """ "HTTP 401", "28P01", or "" when the check got neither."""
        if self.http_status is not None:
            return f"HTTP {self.http_status}"
        return self.code or ""


@dataclass(frozen=True)
class DayPoint:
    """A day (UTC) of one integration's checks; avg_latency_ms is over its successful checks."""

    day: date
    checks: int
    failures: int
    avg_latency_ms: float | None


@dataclass(frozen=True)
class PruneReport:
    cutoff: datetime  # raw rows before this moment were rolled up and deleted
    days_rolled_up: int
    rollup_rows: int
    deleted: int

    def as_dict(self) -> dict:
        return {
            "cutoff": self.cutoff.isoformat(),
            "daysRolledUp": self.days_rolled_up,
            "rollupRows": self.rollup_rows,
            "deleted": self.deleted,
        }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _as_date(value: date | str) -> date:
    """PostgreSQL's and MariaDB's date() return a date, SQLite's a 'YYYY-MM-DD' text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _days(days: int) -> int:
    days = int(days)
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"Choose between 1 and {MAX_DAYS} days, not {days}.")
    return days


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """The first moment kept raw: midnight (UTC) of the day retention_days before now, so whole days go."""
    return _midnight((now - timedelta(days=int(retention_days))).date())


_FAILED = case((CheckRecord.success.is_(False), 1), else_=0)
_SUCCESS_LATENCY = case((CheckRecord.success.is_(True), CheckRecord.latency_ms), else_=None)


class HistoryService:
    def __init__(self, factory: sessionmaker, retention_days: int = DEFAULT_RETENTION_DAYS):
        self._factory = factory
        self.retention_days = int(retention_days)

    # ----- reads ------------------------------------------------------------------------------

    def recent(self, integration_id: int, limit: int = 50) -> list[CheckView]:
        """The newest checks first, at most `limit` (1 to 1000)."""
        limit = max(1, min(int(limit), 1000))
        query = (
            select(CheckRecord)
            .where(CheckRecord.integration_id == integration_id)
            .order_by(CheckRecord.at.desc(), CheckRecord.id.desc())
            .limit(limit)
        )
        with self._factory() as session:
            return [
                CheckView(
                    r.at, r.success, r.check_class, r.latency_ms, r.http_status, r.code, r.message or "", r.trigger
                )
                for r in session.scalars(query)
            ]

    def _rolled_up_through(self, session, integration_id: int) -> date | None:
        """The newest day of the integration read from its rollups (every earlier day is, too)."""
        value = session.scalar(select(func.max(CheckRollup.day)).where(CheckRollup.integration_id == integration_id))
        return _as_date(value) if value is not None else None

    def _raw_since(self, session, integration_id: int, start: datetime) -> datetime:
        """Where the raw rows take over from the rollups for a window starting at `start`."""
        through = self._rolled_up_through(session, integration_id)
        if through is None:
            return start
        return max(start, _midnight(through + timedelta(days=1)))

    def uptime(self, integration_id: int, days: int, now: datetime | None = None) -> float | None:
        """Successful checks / checks over the last `days` days (0.0 to 1.0); None when there were none.

        Raw rows for what is still kept, the daily rollups for the whole days before that (a rolled-up day
        that began before the window's start counts whole)."""
        now = now or utcnow()
        start = now - timedelta(days=_days(days))
        with self._factory() as session:
            raw_from = self._raw_since(session, integration_id, start)
            checks, failures = session.execute(
                select(func.count(CheckRecord.id), func.coalesce(func.sum(_FAILED), 0)).where(
                    CheckRecord.integration_id == integration_id,
                    CheckRecord.at >= raw_from,
                    CheckRecord.at <= now,
                )
            ).one()
            if raw_from > start:
                rolled, rolled_failures = session.execute(
                    select(
                        func.coalesce(func.sum(CheckRollup.checks), 0),
                        func.coalesce(func.sum(CheckRollup.failures), 0),
                    ).where(
                        CheckRollup.integration_id == integration_id,
                        CheckRollup.day >= start.date(),
                        CheckRollup.day < raw_from.date(),
                    )
                ).one()
                checks, failures = int(checks) + int(rolled), int(failures) + int(rolled_failures)
        checks, failures = int(checks), int(failures)
        return None if checks == 0 else (checks - failures) / checks

    def latency(self, integration_id: int, days: int, now: datetime | None = None) -> tuple[int | None, int | None]:
        """(p50, p95) in milliseconds of the successful checks over the last `days` days, nearest rank;
        (None, None) without any. Raw rows only (a rollup keeps no distribution), at most the newest
        MAX_LATENCY_SAMPLES of them: a count, then one ORDER BY ... LIMIT 1 OFFSET k per percentile."""
        now = now or utcnow()
        start = now - timedelta(days=_days(days))
        window = (
            select(CheckRecord.latency_ms.label("latency_ms"))
            .where(
                CheckRecord.integration_id == integration_id,
                CheckRecord.at >= start,
                CheckRecord.at <= now,
                CheckRecord.success.is_(True),
                CheckRecord.latency_ms.is_not(None),
            )
            .order_by(CheckRecord.at.desc())
            .limit(MAX_LATENCY_SAMPLES)
            .subquery("window")
        )
        with self._factory() as session:
            count = int(session.scalar(select(func.count()).select_from(window)) or 0)
            if count == 0:
                return None, None

            def rank(fraction: float) -> int:
                offset = max(0, -(-int(fraction * 100) * count // 100) - 1)  # ceil(fraction * n) - 1
                value = session.scalar(
                    select(window.c.latency_ms).order_by(window.c.latency_ms).limit(1).offset(offset)
                )
                return int(value)

            return rank(0.50), rank(0.95)

    def daily(self, integration_id: int, days: int, now: datetime | None = None) -> list[DayPoint]:
        """One point per day (UTC) from `days` - 1 days ago to today, days without a check as zeros."""
        now = now or utcnow()
        days = _days(days)
        first = now.date() - timedelta(days=days - 1)
        found: dict[date, DayPoint] = {}
        with self._factory() as session:
            raw_from = self._raw_since(session, integration_id, _midnight(first))
            if raw_from > _midnight(first):
                rows = session.execute(
                    select(
                        CheckRollup.day,
                        CheckRollup.checks,
                        CheckRollup.failures,
                        CheckRollup.latency_ms_total,
                    ).where(
                        CheckRollup.integration_id == integration_id,
                        CheckRollup.day >= first,
                        CheckRollup.day < raw_from.date(),
                    )
                )
                for day, checks, failures, total in rows:
                    passed = int(checks) - int(failures)
                    average = int(total) / passed if passed else None
                    found[_as_date(day)] = DayPoint(_as_date(day), int(checks), int(failures), average)
            day = func.date(CheckRecord.at, type_=Date).label("day")
            rows = session.execute(
                select(day, func.count(CheckRecord.id), func.coalesce(func.sum(_FAILED), 0), func.avg(_SUCCESS_LATENCY))
                .where(
                    CheckRecord.integration_id == integration_id,
                    CheckRecord.at >= raw_from,
                    CheckRecord.at <= now,
                )
                .group_by(day)
            )
            for value, checks, failures, average in rows:
                found[_as_date(value)] = DayPoint(
                    _as_date(value), int(checks), int(failures), float(average) if average is not None else None
                )
        return [
            found.get(first + timedelta(days=n), DayPoint(first + timedelta(days=n), 0, 0, None)) for n in range(days)
        ]

    # ----- rollups and retention ---------------------------------------------------------------

    def _rollup_select(self, day: date, only_missing: bool):
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        query = select(
            CheckRecord.integration_id,
            literal(day, Date),
            func.count(CheckRecord.id),
            func.coalesce(func.sum(_FAILED), 0),
            func.coalesce(func.sum(_SUCCESS_LATENCY), 0),
            func.coalesce(func.max(_SUCCESS_LATENCY), 0),
        ).where(CheckRecord.at >= start, CheckRecord.at < end)
        if only_missing:
            query = query.where(
                ~exists().where(and_(CheckRollup.integration_id == CheckRecord.integration_id, CheckRollup.day == day))
            )
        return query.group_by(CheckRecord.integration_id)

    _COLUMNS = ("integration_id", "day", "checks", "failures", "latency_ms_total", "latency_ms_max")

    def rollup(self, day: date) -> int:
        """Recompute `day`'s rollup of every integration with raw rows that day, replacing what was there
        (idempotent). An integration whose raw rows of that day are gone keeps its rollup: it is all that is
        known. Returns the rollup rows written."""
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        with self._factory.begin() as session:
            present = select(CheckRecord.integration_id).where(CheckRecord.at >= start, CheckRecord.at < end)
            session.execute(
                delete(CheckRollup)
                .where(CheckRollup.day == day, CheckRollup.integration_id.in_(present))
                .execution_options(synchronize_session=False)
            )
            result = session.execute(
                insert(CheckRollup).from_select(self._COLUMNS, self._rollup_select(day, False)),
                execution_options={"preserve_rowcount": True},  # an INSERT's rowcount is kept only when asked
            )
            return max(0, result.rowcount or 0)

    def prune(self, now: datetime | None = None, retention_days: int | None = None, batch: int = PRUNE_BATCH):
        """Roll up every day before the retention cutoff that has raw rows and no rollup yet (one day per
        transaction), then delete the raw rows before the cutoff, at most `batch` per transaction.
        Safe to interrupt and run again: a day already rolled up is never recomputed from a partial day."""
        now = now or utcnow()
        cutoff = retention_cutoff(now, self.retention_days if retention_days is None else retention_days)
        batch = max(1, int(batch))
        days = rollup_rows = deleted = 0
        with self._factory() as session:
            oldest = session.scalar(select(func.min(CheckRecord.at)).where(CheckRecord.at < cutoff))
        day = oldest.date() if oldest is not None else None
        while day is not None and _midnight(day) < cutoff:
            with self._factory.begin() as session:
                result = session.execute(
                    insert(CheckRollup).from_select(self._COLUMNS, self._rollup_select(day, True)),
                    execution_options={"preserve_rowcount": True},
                )
                rollup_rows += max(0, result.rowcount or 0)
                days += 1
                after = session.scalar(
                    select(func.min(CheckRecord.at)).where(
                        CheckRecord.at >= _midnight(day + timedelta(days=1)), CheckRecord.at < cutoff
                    )
                )
            day = after.date() if after is not None else None
        while True:
            with self._factory.begin() as session:
                ids = list(
                    session.scalars(
                        select(CheckRecord.id).where(CheckRecord.at < cutoff).order_by(CheckRecord.id).limit(batch)
                    )
                )
                if not ids:
                    break
                session.execute(
                    delete(CheckRecord).where(CheckRecord.id.in_(ids)).execution_options(synchronize_session=False)
                )
                deleted += len(ids)
        return PruneReport(cutoff, days, rollup_rows, deleted)


__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "CheckView",
    "DayPoint",
    "HistoryService",
    "PruneReport",
    "retention_cutoff",
]
