"""The scheduler's database side: the lease that makes exactly one scheduler plan across every worker,
its heartbeat, and which checks come due.

An integration is due when next_check_at has come (core.integrations.schedule sets it after each check).
Planning hands the check to the engine with its due time as ETA and sets planned_until; if the task is
lost (a killed worker, a Redis restart), planned_until passes and the next tick plans it again, while a
check that ran moved next_check_at on, so a late duplicate finds nothing due and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.integrations import schedule
from core.integrations.health import Health
from core.models import EngineLease, Integration, User, utcnow

SCHEDULER = "scheduler"
PLAN_BATCH = 5000  # checks planned per tick at most; the rest wait for the next tick
FIRST_BATCH = 5000  # never-scheduled integrations given a first due time per tick


@dataclass(frozen=True)
class Heartbeat:
    holder: str | None
    at: datetime | None

    def stale(self, now: datetime, tick_seconds: int) -> bool:
        """No tick for three periods: no consumer runs its scheduler (or none can reach the database)."""
        return self.at is None or now - self.at > timedelta(seconds=3 * tick_seconds + 5)


class SchedulerLease:
    def __init__(self, factory: sessionmaker):
        self._factory = factory

    def acquire(self, holder: str, ttl: timedelta) -> bool:
        """Become (or stay) the scheduler until now + ttl; False while another holder's lease is live."""
        now = utcnow()
        with self._factory.begin() as session:
            if session.get(EngineLease, SCHEDULER) is None:
                try:
                    with session.begin_nested():
                        session.add(EngineLease(name=SCHEDULER))
                except IntegrityError:
                    pass  # another worker created it at the same moment
            taken = session.execute(
                update(EngineLease)
                .where(
                    EngineLease.name == SCHEDULER,
                    or_(EngineLease.holder == holder, EngineLease.holder.is_(None), EngineLease.until < now),
                )
                .values(holder=holder, until=now + ttl, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            return cast(CursorResult, taken).rowcount == 1

    def release(self, holder: str) -> None:
        with self._factory.begin() as session:
            session.execute(
                update(EngineLease)
                .where(EngineLease.name == SCHEDULER, EngineLease.holder == holder)
                .values(holder=None, until=None)
                .execution_options(synchronize_session=False)
            )

    def heartbeat(self) -> Heartbeat:
        with self._factory() as session:
            row = session.get(EngineLease, SCHEDULER)
            return Heartbeat(row.holder, row.heartbeat_at) if row else Heartbeat(None, None)


class Planner:
    """Which checks are due; call only while holding the scheduler lease."""

    def __init__(self, factory: sessionmaker, interval_override: float | None = None):
        self._factory = factory
        self._override = interval_override

    def give_first_due_times(self, now: datetime) -> int:
        """Active integrations never scheduled get a due time somewhere within their first interval."""
        with self._factory.begin() as session:
            rows = session.execute(
                select(Integration.id, Integration.health, User.tier)
                .join(User, Integration.owner_id == User.id)
                .where(Integration.is_active.is_(True), Integration.next_check_at.is_(None))
                .limit(FIRST_BATCH)
            ).all()
            for row in rows:
                interval = schedule.interval_for(row.tier, Health.parse(row.health), self._override)
                session.execute(
                    update(Integration)
                    .where(Integration.id == row.id, Integration.next_check_at.is_(None))
                    .values(next_check_at=schedule.first_due(now, interval))
                    .execution_options(synchronize_session=False)
                )
        return len(rows)

    def plan(self, now: datetime, window: timedelta, alive_for: timedelta) -> list[tuple[int, datetime]]:
        """Due within window and not handed out (or handed out so long ago it was lost): (id, due time),
        each marked planned until its due time plus alive_for."""
        with self._factory.begin() as session:
            rows = session.execute(
                select(Integration.id, Integration.next_check_at)
                .where(
                    Integration.is_active.is_(True),
                    Integration.next_check_at <= now + window,
                    or_(Integration.planned_until.is_(None), Integration.planned_until < now),
                )
                .order_by(Integration.next_check_at)
                .limit(PLAN_BATCH)
            ).all()
            planned = []
            for row in rows:
                due = max(row.next_check_at, now)
                taken = session.execute(  # conditional: a check that just planned its own next one keeps it
                    update(Integration)
                    .where(
                        Integration.id == row.id,
                        or_(Integration.planned_until.is_(None), Integration.planned_until < now),
                    )
                    .values(planned_until=due + alive_for)
                    .execution_options(synchronize_session=False)
                )
                if cast(CursorResult, taken).rowcount == 1:
                    planned.append((row.id, due))
        return planned

    def plan_one(self, integration_id: int, now: datetime, window: timedelta, alive_for: timedelta) -> datetime | None:
        """After a check: when its next one is due within window (short intervals), plan it right away."""
        with self._factory.begin() as session:
            row = session.execute(
                select(Integration.next_check_at, Integration.is_active).where(Integration.id == integration_id)
            ).one_or_none()
            if row is None or not row.is_active or row.next_check_at is None or row.next_check_at > now + window:
                return None
            due = max(row.next_check_at, now)
            planned = session.execute(
                update(Integration)
                .where(
                    Integration.id == integration_id,
                    or_(Integration.planned_until.is_(None), Integration.planned_until < now),
                )
                .values(planned_until=due + alive_for)
                .execution_options(synchronize_session=False)
            )
            return due if cast(CursorResult, planned).rowcount == 1 else None


def claim_marker(factory: sessionmaker, name: str, holder: str, until: datetime) -> bool:
    """A named one-off lease (e.g. "refresh:42"): True for the one caller that takes it while it is free,
    so a job planned on every tick is handed out once until it has had time to run."""
    now = utcnow()
    with factory.begin() as session:
        if session.get(EngineLease, name) is None:
            try:
                with session.begin_nested():
                    session.add(EngineLease(name=name, holder=holder, until=until, heartbeat_at=now))
                return True
            except IntegrityError:
                pass  # another worker created it at the same moment
        taken = session.execute(
            update(EngineLease)
            .where(EngineLease.name == name, or_(EngineLease.until.is_(None), EngineLease.until < now))
            .values(holder=holder, until=until, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult, taken).rowcount == 1
