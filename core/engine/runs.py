"""Check-all runs on the engine: what a run covers, its progress (read by every process from the database),
cancelling it, and finding checks a killed worker lost.

A run is a row with counters and one item per integration. Items are handed to the engine in position
order (hosts interleaved, so the first checks spread over many hosts); each check marks its item done
in the transaction that stores its result, so an item counts once however often it is handed out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.audit import Actor
from core.errors import NotFoundError
from core.integrations.checks import CheckAllScope, CheckTarget
from core.integrations.service import IntegrationService
from core.models import CheckRun, CheckRunItem, Integration, utcnow
from core.ratelimit import Bucket, RateLimiter

ITEM_CHUNK = 1000  # items per INSERT or hand-out
OPEN_STATES = ("pending", "running")  # an item not yet done or skipped; "running": its check has started


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    total: int
    done: int
    connected: int
    failed: int
    skipped: int
    running: int
    cancelled: bool
    finished: bool
    seconds: float

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else min(1.0, (self.done + self.skipped) / self.total)

    @property
    def not_checked(self) -> int:
        return max(0, self.total - self.done - self.skipped)

    def line(self) -> str:
        parts = [f"{self.connected} connected", f"{self.failed} failing"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (being checked elsewhere, paused or cancelled)")
        head = "Cancelled. " if self.cancelled and self.finished else ""
        tail = f" ({self.seconds:.1f} s)" if self.finished else ""
        return f"{head}Checked {self.done} of {self.total}: " + ", ".join(parts) + "." + tail


def run_holder_prefix(run_id: int) -> str:
    """Leases of a run's checks start with this, so its running checks can be counted."""
    return f"run{run_id}-"


class CheckRuns:
    def __init__(self, factory: sessionmaker, integrations: IntegrationService, limiter: RateLimiter | None = None):
        self._factory = factory
        self._integrations = integrations
        self._limiter = limiter

    def start(self, actor: Actor, scope: CheckAllScope) -> int:
        """Record a run of every active integration in scope; the engine then hands its items out.

        Raises RateLimitedError when the person starts runs too often.
        """
        if self._limiter is not None:
            self._limiter.attempt(Bucket("check_all", str(actor.id)), "check-all runs")
        targets = interleave_hosts(self._integrations.check_targets(actor, scope))
        now = utcnow()
        with self._factory.begin() as session:
            run = CheckRun(
                actor_id=actor.id, actor=actor.username, scope=scope_text(scope), total=len(targets), created_at=now
            )
            session.add(run)
            session.flush()
            for start in range(0, len(targets), ITEM_CHUNK):
                chunk = targets[start : start + ITEM_CHUNK]
                session.execute(
                    insert(CheckRunItem),
                    [
                        {
                            "run_id": run.id,
                            "integration_id": t.integration_id,
                            "position": start + n,
                            "state": "pending",
                        }
                        for n, t in enumerate(chunk)
                    ],
                )
            if not targets:
                run.finished_at = now
            run_id = run.id
        if not targets:
            self._audit_finished(run_id)
        return run_id

    def pending_chunks(self, run_id: int, handed_before: datetime | None = None) -> Iterator[list[int]]:
        """The run's pending items in position order, a chunk at a time, each chunk marked handed out now.

        handed_before: only items never handed out or handed out before then (a sweep for lost checks).
        """
        after = -1
        while True:
            with self._factory.begin() as session:
                if _cancelled(session, run_id):
                    return
                query = select(CheckRunItem.position, CheckRunItem.integration_id).where(
                    CheckRunItem.run_id == run_id,
                    CheckRunItem.state.in_(OPEN_STATES),
                    CheckRunItem.position > after,
                )
                if handed_before is not None:
                    query = query.where(
                        (CheckRunItem.handed_out_at.is_(None)) | (CheckRunItem.handed_out_at < handed_before)
                    )
                rows = session.execute(query.order_by(CheckRunItem.position).limit(ITEM_CHUNK)).all()
                if not rows:
                    return
                after = rows[-1].position
                ids = [row.integration_id for row in rows]
                session.execute(
                    update(CheckRunItem)
                    .where(CheckRunItem.run_id == run_id, CheckRunItem.integration_id.in_(ids))
                    .values(handed_out_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            yield ids

    def item_open(self, run_id: int, integration_id: int) -> bool:
        """Whether the item still waits for its check: pending, and its run not cancelled."""
        with self._factory() as session:
            state = session.scalar(_ITEM_STATE, {"the_run": run_id, "the_integration": integration_id})
            return state in OPEN_STATES

    def start_item(self, run_id: int, integration_id: int) -> bool:
        """Mark the item's check under way, unless a cancel skipped it first: the caller holds its lease.

        Cancel skips only pending items, and both write the item's row, so exactly one of the two wins
        on every database: a check that starts counts, one that lost to the cancel must not run.
        """
        with self._factory.begin() as session:
            started = session.execute(_START_ITEM, {"the_run": run_id, "the_integration": integration_id})
            return cast(CursorResult, started).rowcount == 1

    def skip(self, run_id: int, integration_id: int) -> None:
        """The item will not be checked by this run (being checked elsewhere, deleted, paused, cancelled)."""
        with self._factory.begin() as session:
            skipped = session.execute(_move_open_item(run_id, integration_id, "skipped"))
            if cast(CursorResult, skipped).rowcount == 1:
                session.execute(
                    update(CheckRun)
                    .where(CheckRun.id == run_id)
                    .values(skipped=CheckRun.skipped + 1, progress_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        self.finish_if_complete(run_id)

    def finish_if_complete(self, run_id: int) -> bool:
        """Mark the run finished once every item is done or skipped; the one process that does audits it.

        Every check of a run calls this and all but the last find it unfinished: they only read, so they
        take no write lock (on SQLite one writer at a time: a write here per check was a quarter of a
        check's write transactions). The guarded update decides, should two last checks race."""
        complete = (
            CheckRun.id == run_id,
            CheckRun.finished_at.is_(None),
            CheckRun.done + CheckRun.skipped >= CheckRun.total,
        )
        with self._factory() as session:
            if session.scalar(select(CheckRun.id).where(*complete)) is None:
                return False
        with self._factory.begin() as session:
            finished = session.execute(
                update(CheckRun)
                .where(*complete)
                .values(finished_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            won = cast(CursorResult, finished).rowcount == 1
        if won:
            self._audit_finished(run_id)
        return won

    def cancel(self, actor: Actor, run_id: int) -> RunProgress:
        """Stop handing out the run's checks: every item whose check has not started is skipped. Checks
        already under way finish and count."""
        with self._factory.begin() as session:
            run = self._visible_run(session, actor, run_id)
            if run.cancelled_at is None and run.finished_at is None:
                run.cancelled_at = utcnow()
                skipped = session.execute(
                    update(CheckRunItem)
                    .where(CheckRunItem.run_id == run_id, CheckRunItem.state == "pending")
                    .values(state="skipped")
                    .execution_options(synchronize_session=False)
                )
                run.skipped += cast(CursorResult, skipped).rowcount
        self.finish_if_complete(run_id)
        return self.progress(actor, run_id)

    def progress(self, actor: Actor, run_id: int) -> RunProgress:
        with self._factory() as session:
            run = self._visible_run(session, actor, run_id)
            running = 0
            if run.finished_at is None:
                running = session.scalar(select(func.count()).select_from(Integration).where(*_leased_by(run_id))) or 0
            end = run.finished_at or utcnow()
            return RunProgress(
                run.id,
                run.total,
                run.done,
                run.connected,
                run.failed,
                run.skipped,
                running,
                run.cancelled_at is not None,
                run.finished_at is not None,
                (end - run.created_at).total_seconds(),
            )

    def failures(self, actor: Actor, run_id: int, limit: int = 200) -> list[tuple[int, str, str]]:
        """(integration id, name, message) of the run's failed checks, at most limit."""
        from core.models import CheckRecord

        with self._factory() as session:
            self._visible_run(session, actor, run_id)
            rows = session.execute(
                select(CheckRecord.integration_id, Integration.name, CheckRecord.message)
                .join(Integration, Integration.id == CheckRecord.integration_id)
                .where(CheckRecord.run_id == run_id, CheckRecord.success.is_(False))
                .order_by(CheckRecord.id)
                .limit(limit)
            ).all()
            return [(row.integration_id, row.name, row.message) for row in rows]

    def failing_checks(self, actor: Actor, run_id: int, limit: int = 200) -> list[tuple[int, str, str, str]]:
        """(integration id, its current name, message, check class) of the run's failed checks, at most limit."""
        from core.models import CheckRecord

        with self._factory() as session:
            self._visible_run(session, actor, run_id)
            rows = session.execute(
                select(CheckRecord.integration_id, Integration.name, CheckRecord.message, CheckRecord.check_class)
                .join(Integration, Integration.id == CheckRecord.integration_id)
                .where(CheckRecord.run_id == run_id, CheckRecord.success.is_(False))
                .order_by(CheckRecord.id)
                .limit(limit)
            ).all()
            return [(row.integration_id, row.name, row.message, row.check_class) for row in rows]

    def unfinished(self, actor: Actor) -> int | None:
        """The person's newest run that has not finished (a reloaded page shows it again)."""
        with self._factory() as session:
            return session.scalar(
                select(CheckRun.id)
                .where(CheckRun.actor_id == actor.id, CheckRun.finished_at.is_(None))
                .order_by(CheckRun.id.desc())
                .limit(1)
            )

    def stalled(self, quiet_for: timedelta, limit: int = 20) -> list[int]:
        """Unfinished runs without progress for quiet_for: a worker holding their checks may have died."""
        cutoff = utcnow() - quiet_for
        with self._factory() as session:
            return list(
                session.scalars(
                    select(CheckRun.id)
                    .where(
                        CheckRun.finished_at.is_(None),
                        CheckRun.cancelled_at.is_(None),
                        func.coalesce(CheckRun.progress_at, CheckRun.created_at) < cutoff,
                    )
                    .order_by(CheckRun.id)
                    .limit(limit)
                )
            )

    def settle_cancelled(self, quiet_for: timedelta, limit: int = 20) -> None:
        """Finish cancelled runs left waiting on a check whose worker died: its lease has run out, so
        nothing will record it; it counts as skipped."""
        cutoff = utcnow() - quiet_for
        with self._factory() as session:
            run_ids = list(
                session.scalars(
                    select(CheckRun.id)
                    .where(
                        CheckRun.finished_at.is_(None),
                        CheckRun.cancelled_at.is_not(None),
                        func.coalesce(CheckRun.progress_at, CheckRun.cancelled_at) < cutoff,
                    )
                    .order_by(CheckRun.id)
                    .limit(limit)
                )
            )
        for run_id in run_ids:
            with self._factory.begin() as session:
                still_running = select(Integration.id).where(*_leased_by(run_id))
                lost = session.execute(
                    update(CheckRunItem)
                    .where(
                        CheckRunItem.run_id == run_id,
                        CheckRunItem.state.in_(OPEN_STATES),
                        CheckRunItem.integration_id.not_in(still_running),
                    )
                    .values(state="skipped")
                    .execution_options(synchronize_session=False)
                )
                session.execute(
                    update(CheckRun)
                    .where(CheckRun.id == run_id)
                    .values(skipped=CheckRun.skipped + cast(CursorResult, lost).rowcount, progress_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            self.finish_if_complete(run_id)

    def _visible_run(self, session: Session, actor: Actor, run_id: int) -> CheckRun:
        run = session.get(CheckRun, run_id)
        if run is None or (run.actor_id != actor.id and not actor.is_admin):
            raise NotFoundError(f"No check-all run {run_id} here.")
        return run

    def _audit_finished(self, run_id: int) -> None:
        with self._factory.begin() as session:
            run = session.get(CheckRun, run_id)
            if run is None:
                return
            end = run.finished_at or utcnow()
            details = {
                "scope": run.scope,
                "checked": run.done,
                "connected": run.connected,
                "failing": run.failed,
                "skipped": run.skipped,
                "cancelled": run.cancelled_at is not None,
                "seconds": round((end - run.created_at).total_seconds(), 1),
                "run": run.id,
            }
            actor = Actor(run.actor_id, run.actor, "member", "FREE") if run.actor_id is not None else None
            outcome = "failure" if run.failed else "success"
            audit.record(session, actor, "integration.check_all", outcome, None, details)


def _move_open_item(run_id: int, integration_id: int, state: str):
    """Move an item still open (pending or running) to state: one conditional UPDATE of its row."""
    return (
        update(CheckRunItem)
        .where(
            CheckRunItem.run_id == run_id,
            CheckRunItem.integration_id == integration_id,
            CheckRunItem.state.in_(OPEN_STATES),
        )
        .values(state=state)
        .execution_options(synchronize_session=False)
    )


def _leased_by(run_id: int) -> tuple:
    """Where an integration's check lease is held, unexpired, by one of the run's checks."""
    return (
        Integration.check_lease_holder.like(run_holder_prefix(run_id) + "%"),
        Integration.check_lease_until >= utcnow(),
    )


# Built once with bound parameters (every check of a run reads its item and starts it). The run's id
# while it is neither cancelled nor finished, as a subquery: one statement with the item's.
_LIVE_RUN = select(CheckRun.id).where(
    CheckRun.id == bindparam("the_run"), CheckRun.cancelled_at.is_(None), CheckRun.finished_at.is_(None)
)
_THE_ITEM = (
    CheckRunItem.run_id == bindparam("the_run"),
    CheckRunItem.integration_id == bindparam("the_integration"),
    CheckRunItem.run_id.in_(_LIVE_RUN),
)
_ITEM_STATE = select(CheckRunItem.state).where(*_THE_ITEM)
_START_ITEM = (
    update(CheckRunItem)
    .where(*_THE_ITEM, CheckRunItem.state.in_(OPEN_STATES))
    .values(state="running")
    .execution_options(synchronize_session=False)
)


def _cancelled(session: Session, run_id: int) -> bool:
    row = session.execute(
        select(CheckRun.cancelled_at, CheckRun.finished_at).where(CheckRun.id == run_id)
    ).one_or_none()
    return row is None or row.cancelled_at is not None or row.finished_at is not None


def scope_text(scope: CheckAllScope) -> str:
    if scope.ids:
        return f"{len(scope.ids)} selected"
    parts = ["everyone" if scope.everyone else "own"]
    if scope.tier:
        parts.append(f"tier {scope.tier}")
    if scope.provider:
        parts.append(f"provider {scope.provider}")
    return ", ".join(parts)


def interleave_hosts(targets: list[CheckTarget]) -> list[CheckTarget]:
    """Round-robin over hosts, so the first checks handed out spread over as many hosts as possible."""
    by_host: dict[str, deque[CheckTarget]] = {}
    for target in targets:
        by_host.setdefault(target.host, deque()).append(target)
    order: list[CheckTarget] = []
    queues = deque(by_host.values())
    while queues:
        queue = queues.popleft()
        order.append(queue.popleft())
        if queue:
            queues.append(queue)
    return order
