"""The engine's jobs, registered on a Huey instance: the same functions run on SqliteHuey and RedisHuey.

- check_scheduled(id, due): a scheduled check; does nothing if the integration was checked since.
- check_run_item(run, id): one check of a check-all run; does nothing if the item is done or cancelled.
- dispatch_run(run): hands a run's pending items to the queue, in position order.
- tick (periodic, every ENGINE_TICK_SECONDS on each consumer): whoever holds the scheduler lease plans the
  checks coming due, re-dispatches runs whose checks a dead worker lost, runs the tick jobs (alerts), folds
  the statistics ledgers every few minutes and, once a day, the maintenance jobs (history retention).

Each job is bounded in time (a check inside its deadline; a lease outlives it) and safe to run twice:
every write it makes is conditional on the state it found.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from huey import Huey, crontab
from huey.api import Task
from huey.exceptions import RetryTask
from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

from core.alerts.pipeline import AlertPipeline
from core.audit import Actor
from core.engine.runs import CheckRuns, RunProgress, run_holder_prefix
from core.engine.scheduler import Heartbeat, Planner, SchedulerLease, claim_marker
from core.errors import ConsoleError, StorageError
from core.integrations import leases, ledgers
from core.integrations.checks import CheckAllScope, CheckOutcome, EngineClaim, Recorded
from core.integrations.refresh import TokenRefresher
from core.integrations.service import IntegrationService
from core.models import EngineLease, utcnow
from core.sync.service import SyncService

log = logging.getLogger(__name__)

FULL_RETRY = (0.5, 2.0)  # seconds to wait, at random, when the caps have no room
DATABASE_RETRY = (2.0, 10.0)  # and when the database does not answer (the consumer backs off)
RECORD_ATTEMPTS = 3  # a check that has run tries this often to store its outcome before checking again
RECORD_RETRY = (0.2, 1.0)  # seconds between those tries, at random
MAINTENANCE = "maintenance"
REFRESH_AHEAD = timedelta(minutes=15)  # an access token is refreshed this long before it expires
REFRESH_BATCH = 500  # refreshes handed out per tick at most
LEDGER_FOLD_SECONDS = 60  # the statistics ledgers gain a row or two per write between folds


class EngineUnavailableError(ConsoleError):
    """The queue (Redis, or the SQLite queue file) refused a job."""


@dataclass(frozen=True)
class EngineLimits:
    max_running: int = 16  # checks at once, over every worker
    per_host: int = 2  # checks at once against one customer host, over every worker
    tick_seconds: int = 60


def job_holder(prefix: str, task: Task | None) -> str:
    """The lease holder of a check job: its Huey task's id, which a retry keeps (Huey requeues the same
    task). A retried job so takes over a lease its failed attempt could not free (the database refused the
    step after the claim, or the release), where any other job, a second copy of a run's item too, reads
    it as a check under way. Without a task (called directly), a new holder."""
    return prefix + (task.id if task is not None else leases.new_holder())


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class TaskEngine:
    huey: Huey
    integrations: IntegrationService
    runs: CheckRuns
    factory: sessionmaker
    limits: EngineLimits = field(default_factory=EngineLimits)
    interval_override: float | None = None
    identity: str = field(default_factory=worker_identity)
    refresher: TokenRefresher | None = None
    alerts: AlertPipeline | None = None
    # Called once a day, as the one scheduler (history retention).
    daily_jobs: list[Callable[[datetime], object]] = field(default_factory=list)
    syncs: SyncService | None = None  # contact syncs (core/sync), planned by tier each tick

    def __post_init__(self) -> None:
        self.lease = SchedulerLease(self.factory)
        self._ticking = threading.Lock()
        self._ledgers_folded_at = float("-inf")
        self.planner = Planner(self.factory, self.interval_override)
        huey = self.huey
        # context=True: the job gets its Huey task, whose id its retries keep (job_holder).
        self.check_scheduled = huey.task(name="check_scheduled", context=True)(self._check_scheduled)
        self.check_run_item = huey.task(name="check_run_item", context=True)(self._check_run_item)
        self.dispatch_run = huey.task(name="dispatch_run")(self._dispatch_run)
        self.refresh_token = huey.task(name="refresh_token")(self._refresh_token)
        self.plan_alerts = huey.task(name="plan_alerts")(self._plan_alerts)
        self.deliver_alert = huey.task(name="deliver_alert")(self._deliver_alert)
        self.sync_run = huey.task(name="sync_run")(self._sync_run)
        self.tick = huey.periodic_task(crontab(), name="engine_tick")(self._tick)

    def add_job(self, name: str, job: Callable[..., object]):
        """Register another service's job as an engine task (a database outage retried with backoff, as the
        engine's own jobs are); returns the task, called to enqueue it."""

        def run(*args):
            return self._database(lambda: job(*args))

        run.__name__ = name
        return self.huey.task(name=name)(run)

    # ----- what pages and the CLI call ----------------------------------------------------------

    def start_check_all(self, actor: Actor, scope: CheckAllScope) -> int:
        """Record a check-all run and hand it to the engine; its progress is read with progress()."""
        run_id = self.runs.start(actor, scope)
        try:
            self.dispatch_run(run_id)
        except Exception as exc:  # the run is recorded; the scheduler's sweep hands it out once the queue answers
            log.warning("could not hand check-all run %s to the queue: %s", run_id, type(exc).__name__)
        return run_id

    def progress(self, actor: Actor, run_id: int) -> RunProgress:
        return self.runs.progress(actor, run_id)

    def cancel(self, actor: Actor, run_id: int) -> RunProgress:
        return self.runs.cancel(actor, run_id)

    def heartbeat(self) -> Heartbeat:
        return self.lease.heartbeat()

    @property
    def lease_time(self) -> timedelta:
        return self.integrations.lease_time()

    # ----- the jobs ------------------------------------------------------------------------------

    def _check_scheduled(self, integration_id: int, due: datetime, task: Task | None = None) -> None:
        if utcnow() - due > self.lease_time:
            return  # waited longer than its plan lasts: the scheduler plans it again
        claim = self._claim(integration_id, job_holder("", task), due_by=due + timedelta(seconds=1))
        if not isinstance(claim, EngineClaim):
            return
        recorded = self._check(claim, "schedule", None)
        self._plan_next(integration_id)
        self._health_changed(recorded)

    def _check_run_item(self, run_id: int, integration_id: int, task: Task | None = None) -> None:
        if not self._database(lambda: self.runs.item_open(run_id, integration_id)):
            return
        claim = self._claim(integration_id, job_holder(run_holder_prefix(run_id), task))
        if claim in ("gone", "busy"):
            if claim == "busy" and self._held_by_run(run_id, integration_id):
                return  # this run's own check of it is under way (handed out twice after a sweep)
            self._database(lambda: self.runs.skip(run_id, integration_id))
            return
        assert isinstance(claim, EngineClaim)
        if not self._database(lambda: self.runs.start_item(run_id, integration_id)):
            self._database(lambda: self.integrations.release_checks([integration_id], claim.holder))
            return  # cancelled between the look and the lease
        recorded = self._check(claim, "check_all", run_id)
        self._database(lambda: self.runs.finish_if_complete(run_id))
        self._health_changed(recorded)

    def _dispatch_run(self, run_id: int, handed_before: datetime | None = None) -> None:
        for chunk in self.runs.pending_chunks(run_id, handed_before):
            for integration_id in chunk:
                self.check_run_item(run_id, integration_id)

    def _tick(self) -> None:
        # Huey enqueues a tick every period, and a slow one can still run when the next starts on another
        # thread of this consumer: both would hold this process's scheduler lease. One at a time.
        if not self._ticking.acquire(blocking=False):
            return
        try:
            self._tick_as_scheduler()
        finally:
            self._ticking.release()

    def _tick_as_scheduler(self) -> None:
        ttl = timedelta(seconds=3 * self.limits.tick_seconds + 5)
        try:
            if not self.lease.acquire(self.identity, ttl):
                return
            now = utcnow()
            window = timedelta(seconds=self.limits.tick_seconds)
            self.planner.give_first_due_times(now)
            for integration_id, due in self.planner.plan(now, window, self.lease_time + window):
                self.check_scheduled.schedule(args=(integration_id, due), eta=due)
            quiet = self.lease_time + window
            for run_id in self.runs.stalled(quiet):
                log.warning("check-all run %s made no progress for %s: handing its checks out again", run_id, quiet)
                self.dispatch_run(run_id, now - quiet)
            self.runs.settle_cancelled(quiet)
            self._plan_refreshes(now)
            self._plan_syncs(now)
            self._alert_tick(now)
            self._fold_ledgers()
            if self._maintenance_due(now):
                self._forget_old_markers(now)
                for job in self.daily_jobs:
                    job(now)
        except (OperationalError, StorageError) as exc:
            log.warning("the scheduler could not reach the database (%s); it tries again next tick", type(exc).__name__)

    def _refresh_token(self, integration_id: int) -> None:
        """Refresh an OAuth access token before it dies; a refused grant moves the integration to needs
        reconnect (with its health change, so its owner is alerted)."""
        if self.refresher is None:
            return
        result = self.refresher.refresh(integration_id)  # under the lease; never raises; audited
        if result.error == "storage":
            raise RetryTask(delay=random.uniform(*DATABASE_RETRY))
        if result.needs_reconnect:
            recorded = self._database(
                lambda: self.integrations.record_refused_refresh(integration_id, result.message, result.error)
            )
            self._health_changed(recorded)

    def _plan_alerts(self) -> None:
        """Turn health changes into deliveries (grouped into incidents); each is sent once due."""
        if self.alerts is None:
            return
        alerts = self.alerts
        now = utcnow()
        for delivery_id in self._database(lambda: alerts.process_changes()):
            # Sent once its grouping window is over (deliver() waits for that itself); the tick's sweep
            # catches any this loses.
            self.deliver_alert.schedule(args=(delivery_id,), eta=now + alerts.window)

    def _deliver_alert(self, delivery_id: int) -> None:
        if self.alerts is None:
            return
        alerts = self.alerts
        outcome = self._database(lambda: alerts.deliver(delivery_id))  # idempotent, retried with backoff
        if outcome.status == "retry" and outcome.retry_at is not None:
            self.deliver_alert.schedule(args=(delivery_id,), eta=outcome.retry_at)

    def _alert_tick(self, now: datetime) -> None:
        """As the scheduler: changes not planned yet, incidents that are over, and deliveries now due."""
        if self.alerts is None:
            return
        self.alerts.process_changes()
        self.alerts.close_recovered_incidents()
        until = now + timedelta(seconds=3 * self.limits.tick_seconds + 5)
        for delivery_id in self.alerts.due(now):
            if claim_marker(self.factory, f"alert:{delivery_id}", self.identity, until):
                self.deliver_alert(delivery_id)

    def _sync_run(self, sync_id: int) -> None:
        """One contact sync run, under the sync's lease (a second copy of the job finds it held and returns);
        bounded by the sync's run time; resumable, so a run after a crash goes on where the last stopped."""
        if self.syncs is not None:
            syncs = self.syncs
            self._database(lambda: syncs.run(sync_id, "schedule"))

    def _plan_syncs(self, now: datetime) -> None:
        if self.syncs is not None:
            for sync_id in self.syncs.plan_due(now):
                self.sync_run(sync_id)

    def _plan_refreshes(self, now: datetime) -> None:
        if self.refresher is None:
            return
        until = now + self.lease_time
        for integration_id in self.refresher.due(now, REFRESH_AHEAD, limit=REFRESH_BATCH):
            if claim_marker(self.factory, f"refresh:{integration_id}", self.identity, until):
                self.refresh_token(integration_id)

    # ----- steps ---------------------------------------------------------------------------------

    def _claim(self, integration_id: int, holder: str, due_by: datetime | None = None) -> EngineClaim | str:
        claim = self._database(
            lambda: self.integrations.claim_for_engine(
                integration_id, self.limits.max_running, self.limits.per_host, due_by, holder
            )
        )
        if claim == "full":
            raise RetryTask(delay=random.uniform(*FULL_RETRY))
        return claim

    def _check(self, claim: EngineClaim, trigger: str, run_id: int | None) -> Recorded:
        try:
            outcome = self.integrations.run_leased(
                claim.provider_key, claim.integration_id, claim.configuration, trigger, run_id
            )
        except BaseException:
            self._database(lambda: self.integrations.release_checks([claim.integration_id], claim.holder))
            raise
        return self._record(claim, outcome)

    def _record(self, claim: EngineClaim, outcome: CheckOutcome) -> Recorded:
        """Store the outcome of a check that has run. A busy database (SQLite's one writer, its busy timeout
        passed) is waited out here a few times: the job retried later could not resume the check, its lease
        held by this attempt's holder reads as a check under way, so the item would wait for the lease to
        run out. If the database still does not answer, the lease is freed and the retried job checks again.
        """

        def record() -> Recorded:
            return self.integrations.record_checks(None, claim.holder, [outcome], audit_each=False)

        for _ in range(RECORD_ATTEMPTS - 1):
            try:
                return record()
            except (OperationalError, StorageError):
                time.sleep(random.uniform(*RECORD_RETRY))
        return self._database(lambda: self._record_or_free(claim, record))

    def _record_or_free(self, claim: EngineClaim, record: Callable[[], Recorded]) -> Recorded:
        try:
            return record()
        except (OperationalError, StorageError):
            # If this fails too, the lease runs out and the scheduler's sweep hands the check out again.
            with contextlib.suppress(OperationalError, StorageError):
                self.integrations.release_checks([claim.integration_id], claim.holder)
            raise

    def _plan_next(self, integration_id: int) -> None:
        window = timedelta(seconds=self.limits.tick_seconds)
        due = self._database(lambda: self.planner.plan_one(integration_id, utcnow(), window, self.lease_time + window))
        if due is not None:
            self.check_scheduled.schedule(args=(integration_id, due), eta=due)

    def _held_by_run(self, run_id: int, integration_id: int) -> bool:
        def held() -> bool:
            with self.factory() as session:
                holder = leases.holder_of(session, integration_id)
            return bool(holder and holder.startswith(run_holder_prefix(run_id)))

        return self._database(held)

    def _health_changed(self, recorded: Recorded) -> None:
        if not recorded.changes:
            return
        if self.alerts is not None:
            try:
                self.plan_alerts()
            except Exception:  # the change is in the outbox; the next tick plans it
                log.warning("could not hand the alert planning to the queue; the next tick does it")

    def _fold_ledgers(self) -> None:
        """Every LEDGER_FOLD_SECONDS, as the one scheduler: fold the statistics ledgers, which every write
        appends to (core.integrations.ledgers), so that what Statistics sums stays about one row per key."""
        if time.monotonic() - self._ledgers_folded_at < LEDGER_FOLD_SECONDS:
            return
        with self.factory.begin() as session:
            ledgers.compact(session.connection())
        self._ledgers_folded_at = time.monotonic()

    def _forget_old_markers(self, now: datetime) -> None:
        """One-off markers (refresh:<id>, alert:<id>) a day past their time mean nothing any more."""

        with self.factory.begin() as session:
            session.execute(
                delete(EngineLease).where(
                    or_(
                        EngineLease.name.like("refresh:%"),
                        EngineLease.name.like("alert:%"),
                        EngineLease.name.like("sync:%"),
                    ),
                    EngineLease.until < now - timedelta(days=1),
                )
            )

    def _maintenance_due(self, now: datetime) -> bool:
        """Once a day across every worker: a lease row whose time is the next maintenance."""

        with self.factory.begin() as session:
            if session.get(EngineLease, MAINTENANCE) is None:
                try:
                    with session.begin_nested():
                        session.add(EngineLease(name=MAINTENANCE, until=None))
                except IntegrityError:
                    pass  # another worker created it at the same moment
            taken = session.execute(
                update(EngineLease)
                .where(EngineLease.name == MAINTENANCE, or_(EngineLease.until.is_(None), EngineLease.until < now))
                .values(holder=self.identity, until=now + timedelta(days=1), heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            return taken.rowcount == 1  # type: ignore[attr-defined]

    def _database(self, step):
        """Run a database step of a job; when the database does not answer, back off and retry the job."""
        try:
            return step()
        except (OperationalError, StorageError) as exc:
            delay = random.uniform(*DATABASE_RETRY)
            log.warning(
                "the database did not answer (%s); this worker backs off for %.0f s and tries the job again",
                type(exc).__name__,
                delay,
            )
            raise RetryTask(delay=delay) from exc
