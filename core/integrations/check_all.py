"""Check all: re-test many integrations at once without flooding anyone's server.

At most `concurrency` checks run at once, and at most `per_host` against one customer host, counted over
every run in the process (two people checking at once share the caps). Each check
holds its integration's lease (core.integrations.leases), so no two checks of one integration ever overlap, in this
process or another. Results are written in batches, so the database is not the bottleneck.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy.orm import sessionmaker

from core import audit
from core.audit import Actor
from core.errors import StorageError
from core.integrations import leases
from core.integrations.checks import CheckAllScope, CheckOutcome, CheckTarget
from core.integrations.service import IntegrationService
from core.ratelimit import Bucket, RateLimiter
from core.results import TestResult

FLUSH_EVERY = 250  # results per database write
FLUSH_AFTER = 1.0  # seconds: results are never held longer than this
POLL = 0.2  # seconds between looks at the cancel flag while checks run
OWN = CheckAllScope()  # the actor's own active integrations


@dataclass(frozen=True)
class CheckAllProgress:
    total: int
    done: int = 0
    connected: int = 0
    failed: int = 0
    busy: int = 0  # skipped: being checked elsewhere at the time
    running: int = 0
    cancelled: bool = False

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else (self.done + self.busy) / self.total

    def line(self) -> str:
        parts = [f"{self.connected} connected", f"{self.failed} failing"]
        if self.busy:
            parts.append(f"{self.busy} skipped (being checked elsewhere)")
        return f"Checked {self.done} of {self.total}: " + ", ".join(parts) + "."


@dataclass(frozen=True)
class CheckAllSummary:
    progress: CheckAllProgress
    seconds: float
    busiest_host: int  # the most checks that ran against one host at once
    failures: list[tuple[int, str]] = field(default_factory=list)  # (integration id, message), bounded

    @property
    def failing(self) -> bool:
        return self.progress.failed > 0

    def line(self) -> str:
        p = self.progress
        head = "Cancelled. " if p.cancelled else ""
        not_run = p.total - p.done - p.busy
        tail = f" {not_run} not checked." if not_run else ""
        return f"{head}{p.line()}{tail} ({self.seconds:.1f} s)"


class CheckAll:
    def __init__(
        self,
        integrations: IntegrationService,
        factory: sessionmaker,
        limiter: RateLimiter | None = None,
        concurrency: int = 16,
        per_host: int = 2,
    ):
        self.integrations = integrations
        self._factory = factory
        self._limiter = limiter
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, per_host)
        # Shared by every run in this process, so two check-alls at once (two people, or cron and a
        # person) keep to the caps together: checks running in all, and per customer host.
        self.state = threading.Condition()
        self.running = 0
        self.running_per_host: Counter[str] = Counter()

    def targets(self, actor: Actor, scope: CheckAllScope = OWN) -> list[CheckTarget]:
        return self.integrations.check_targets(actor, scope)

    def run(
        self,
        actor: Actor,
        scope: CheckAllScope = OWN,
        on_progress: Callable[[CheckAllProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CheckAllSummary:
        """Check every active integration in scope; raises RateLimitedError when run too often."""
        if self._limiter is not None:
            self._limiter.attempt(Bucket("check_all", str(actor.id)), "check-all runs")
        run = _Run(self, actor, self.targets(actor, scope), on_progress, cancel or threading.Event())
        summary = run.execute()
        details = {
            "scope": _scope_text(scope),
            "checked": summary.progress.done,
            "connected": summary.progress.connected,
            "failing": summary.progress.failed,
            "skipped": summary.progress.busy,
            "cancelled": summary.progress.cancelled,
            "seconds": round(summary.seconds, 1),
        }
        audit.record_now(
            self._factory,
            actor,
            "integration.check_all",
            "failure" if summary.failing else "success",
            details=details,
        )
        return summary


def _scope_text(scope: CheckAllScope) -> str:
    parts = ["everyone" if scope.everyone else "own"]
    if scope.tier:
        parts.append(f"tier {scope.tier}")
    if scope.provider:
        parts.append(f"provider {scope.provider}")
    return ", ".join(parts)


def _round_robin(targets: list[CheckTarget]) -> deque[CheckTarget]:
    """Interleave hosts, so the first checks started spread over as many hosts as possible."""
    by_host: dict[str, deque[CheckTarget]] = {}
    for target in targets:
        by_host.setdefault(target.host, deque()).append(target)
    order: deque[CheckTarget] = deque()
    queues = deque(by_host.values())
    while queues:
        queue = queues.popleft()
        order.append(queue.popleft())
        if queue:
            queues.append(queue)
    return order


class _Run:
    """One check-all. Each worker thread takes the next leased check whose host has room, renews its
    lease (one write: the lease must outlive the check's deadline from its start, however long it
    waited in the queue; a lost lease is skipped), runs it and takes the next, so a slot never waits
    for a scheduler; whichever thread finds less than a round leased ahead leases four rounds (one
    write), and whichever collects a batch of results writes it.
    A database failure in any thread stops the run: CheckAll.run then raises StorageError."""

    def __init__(self, check_all: CheckAll, actor: Actor, targets, on_progress, cancel: threading.Event):
        self.check_all, self.actor, self.cancel = check_all, actor, cancel
        self.service = check_all.integrations
        self.on_progress = on_progress or (lambda _progress: None)
        self.pending = _round_robin(targets)
        self.host_of = {t.integration_id: t.host for t in targets}
        self.ready: dict[str, deque[tuple[int, str, dict]]] = {}  # leased, waiting for a free slot
        self.ready_count = 0
        self.leasing = False
        self.running = 0  # this run's
        self.busiest = 0
        self.holder = leases.new_holder()
        self.unwritten: list[CheckOutcome] = []
        self.last_flush = time.monotonic()
        self.failures: list[tuple[int, str]] = []
        self.progress = CheckAllProgress(total=len(targets))
        self.state = check_all.state
        self.crash: Exception | None = None
        self.all_done = threading.Event()
        self.live = 0

    def execute(self) -> CheckAllSummary:
        started = time.monotonic()
        workers = [
            threading.Thread(target=self._work, name=f"check-{n}", daemon=True)
            for n in range(min(self.check_all.concurrency, len(self.pending)))
        ]
        self.live = len(workers)
        if not workers:
            self.all_done.set()
        try:
            for worker in workers:
                worker.start()
            while not self.all_done.wait(POLL):
                if time.monotonic() - self.last_flush > FLUSH_AFTER:
                    self._write(self._take_unwritten())
                self.on_progress(self._snapshot())
        except BaseException:  # an interrupt (Ctrl-C in the CLI): start nothing more, keep what is done
            self.cancel.set()
            raise
        finally:
            for worker in workers:
                worker.join()
            self._write(self._take_unwritten())
            self._release_unstarted()
        if self.crash is not None:
            raise StorageError(
                "The database stopped answering during the check-all, so it stopped. The results stored before "
                "that are kept; try again in a moment."
            ) from self.crash
        self.progress = replace(self.progress, running=0, cancelled=self.cancel.is_set() and self._unfinished())
        self.on_progress(self.progress)
        return CheckAllSummary(self.progress, time.monotonic() - started, self.busiest, self.failures[:200])

    def _unfinished(self) -> bool:
        return self.progress.done + self.progress.busy < self.progress.total

    def _snapshot(self) -> CheckAllProgress:
        with self.state:
            return replace(self.progress, running=self.running)

    # ----- worker threads ------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while (item := self._next()) is not None:
                integration_id, provider_key, config = item
                if not self._renew(item):  # its lease ran out in the queue: someone else may check it now
                    continue
                try:
                    result = self.service.run_stored_test(provider_key, integration_id, config)
                except Exception as exc:  # a test's own failures are results already; this is a bug
                    result = TestResult(False, f"The check stopped unexpectedly ({type(exc).__name__}).", error="bug")
                self._done(integration_id, provider_key, result)
        finally:
            with self.state:
                self.live -= 1
                if self.live == 0:
                    self.all_done.set()

    def _next(self) -> tuple[int, str, dict] | None:
        """The next check to run (its host's count taken), or None when there is nothing left to start."""
        while True:
            with self.state:
                while True:
                    if self.cancel.is_set():
                        return None
                    if item := self._take_ready():
                        return item
                    if self.pending and not self.leasing and self.ready_count < self.check_all.concurrency:
                        self.leasing = True
                        batch = [self.pending.popleft() for _ in range(min(self._lease_size(), len(self.pending)))]
                        break
                    if not (self.pending or self.ready_count or self.leasing):
                        return None
                    self.state.wait(POLL)
            self._lease(batch)

    def _take_ready(self) -> tuple[int, str, dict] | None:
        for host, queue in self.ready.items():
            shared = self.check_all
            if queue and shared.running < shared.concurrency and shared.running_per_host[host] < shared.per_host:
                self.ready_count -= 1
                self.running += 1
                shared.running += 1
                shared.running_per_host[host] += 1
                self.busiest = max(self.busiest, shared.running_per_host[host])
                return queue.popleft()
        return None

    def _lease_size(self) -> int:
        return 4 * self.check_all.concurrency - self.ready_count

    def _lease(self, batch: list[CheckTarget]) -> None:
        try:
            claimed = self.service.claim_checks([t.integration_id for t in batch], self.holder)
        except Exception as exc:
            with self.state:
                self.leasing = False
            self._stop(exc)
            return
        with self.state:
            for target in batch:
                if target.integration_id in claimed:
                    provider_key, config = claimed[target.integration_id]
                    self.ready.setdefault(target.host, deque()).append((target.integration_id, provider_key, config))
                    self.ready_count += 1
            self.progress = replace(self.progress, busy=self.progress.busy + len(batch) - len(claimed))
            self.leasing = False
            self.state.notify_all()

    def _renew(self, item: tuple[int, str, dict]) -> bool:
        """Extend the lease of the check about to start (it may have waited in the queue for longer than
        the lease). False when it cannot run: the lease was lost (counted as skipped) or the database
        failed (the run stops; the lease is released with the unstarted ones). Either way its slot is freed."""
        integration_id = item[0]
        try:
            renewed = self.service.renew_check(integration_id, self.holder)
        except Exception as exc:
            with self.state:
                self._free_slot_locked(integration_id)
                self.ready.setdefault(self.host_of[integration_id], deque()).appendleft(item)
                self.ready_count += 1
            self._stop(exc)
            return False
        if not renewed:
            with self.state:
                self._free_slot_locked(integration_id)
                self.progress = replace(self.progress, busy=self.progress.busy + 1)
        return renewed

    def _free_slot_locked(self, integration_id: int) -> None:
        self.running -= 1
        self.check_all.running -= 1
        host = self.host_of[integration_id]
        self.check_all.running_per_host[host] -= 1
        if not self.check_all.running_per_host[host]:
            del self.check_all.running_per_host[host]
        self.state.notify_all()

    def _done(self, integration_id: int, provider_key: str, result: TestResult) -> None:
        batch = None
        with self.state:
            self._free_slot_locked(integration_id)
            self.unwritten.append(CheckOutcome(integration_id, provider_key, result))
            ok = result.success
            if not ok:
                self.failures.append((integration_id, result.message))
            self.progress = replace(
                self.progress,
                done=self.progress.done + 1,
                connected=self.progress.connected + ok,
                failed=self.progress.failed + (not ok),
            )
            if len(self.unwritten) >= FLUSH_EVERY:
                batch = self._take_unwritten_locked()
            self.state.notify_all()
        self._write(batch)

    def _stop(self, exc: Exception) -> None:
        """The database failed under a worker: start nothing more; CheckAll.run raises it once all have stopped."""
        with self.state:
            self.crash = self.crash or exc
            self.cancel.set()
            self.state.notify_all()

    # ----- writing -------------------------------------------------------------------------------

    def _take_unwritten(self) -> list[CheckOutcome]:
        with self.state:
            return self._take_unwritten_locked()

    def _take_unwritten_locked(self) -> list[CheckOutcome]:
        batch, self.unwritten = self.unwritten, []
        self.last_flush = time.monotonic()
        return batch

    def _write(self, batch: list[CheckOutcome] | None) -> None:
        """Store a batch of results; when the database refuses, keep them for the last try and stop the run."""
        if not batch:
            return
        try:
            self.service.record_checks(self.actor, self.holder, batch)
        except Exception as exc:
            with self.state:
                self.unwritten[:0] = batch
            self._stop(exc)

    def _release_unstarted(self) -> None:
        """Leases taken ahead for checks a cancel stopped from starting (they expire anyway if this fails)."""
        ids = [integration_id for queue in self.ready.values() for integration_id, _, _ in queue]
        self.ready.clear()
        self.ready_count = 0
        if ids:
            try:
                self.service.release_checks(ids, self.holder)
            except Exception as exc:
                self._stop(exc)
