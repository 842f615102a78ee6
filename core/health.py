"""The health monitor: re-test many integrations at once without flooding anyone's server.

At most `concurrency` checks run at once, and at most `per_host` against one customer host. Each check
holds its integration's lease (core.leases), so no two checks of one integration ever overlap, in this
process or another. Results are written in batches, so the database is not the bottleneck.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from sqlalchemy.orm import sessionmaker

from core import audit, leases
from core.audit import Actor
from core.catalog import TestResult
from core.integrations import CheckOutcome, CheckScope, CheckTarget, IntegrationService
from core.ratelimit import Bucket, RateLimiter

FLUSH_EVERY = 50  # results per database write
FLUSH_AFTER = 0.5  # seconds: results are never held longer than this
POLL = 0.2  # seconds between looks at the cancel flag while checks run
OWN = CheckScope()  # the actor's own active integrations


@dataclass(frozen=True)
class CheckProgress:
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
class CheckSummary:
    progress: CheckProgress
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


class HealthMonitor:
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

    def targets(self, actor: Actor, scope: CheckScope = OWN) -> list[CheckTarget]:
        return self.integrations.check_targets(actor, scope)

    def check_all(
        self,
        actor: Actor,
        scope: CheckScope = OWN,
        on_progress: Callable[[CheckProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CheckSummary:
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


def _result_of(future: Future) -> TestResult:
    try:
        return future.result()
    except Exception as exc:  # a test's own failures are results already; this is a bug or a cancel
        return TestResult(False, f"The check stopped unexpectedly ({type(exc).__name__}).", error=type(exc).__name__)


def _scope_text(scope: CheckScope) -> str:
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
    """One check-all: a scheduler on the calling thread, the checks on a bounded pool of workers."""

    def __init__(self, monitor: HealthMonitor, actor: Actor, targets, on_progress, cancel: threading.Event):
        self.monitor, self.actor, self.cancel = monitor, actor, cancel
        self.service = monitor.integrations
        self.on_progress = on_progress or (lambda _progress: None)
        self.pending = _round_robin(targets)
        self.host_of = {t.integration_id: t.host for t in targets}
        self.ready: dict[str, deque[tuple[int, str, dict]]] = {}  # leased, waiting for a free slot
        self.ready_count = 0
        self.running: dict[Future, tuple[int, str]] = {}
        self.per_host: Counter[str] = Counter()
        self.busiest = 0
        self.holder = leases.new_holder()
        self.unwritten: list[CheckOutcome] = []
        self.last_flush = time.monotonic()
        self.failures: list[tuple[int, str]] = []
        self.progress = CheckProgress(total=len(targets))

    def execute(self) -> CheckSummary:
        started = time.monotonic()
        pool = ThreadPoolExecutor(self.monitor.concurrency, thread_name_prefix="check")
        try:
            self._loop(pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._collect(list(self.running))
            self._flush()
            self._release_unstarted()
        self.progress = replace(self.progress, running=0, cancelled=self.cancel.is_set())
        self.on_progress(self.progress)
        return CheckSummary(self.progress, time.monotonic() - started, self.busiest, self.failures[:200])

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while (self.pending or self.ready_count or self.running) and not self.cancel.is_set():
            self._lease_more()
            self._start(pool)
            if self.running:
                done, _ = wait(list(self.running), timeout=POLL, return_when=FIRST_COMPLETED)
                self._collect(done)
            if len(self.unwritten) >= FLUSH_EVERY or time.monotonic() - self.last_flush > FLUSH_AFTER:
                self._flush()
            self.progress = replace(self.progress, running=len(self.running))
            self.on_progress(self.progress)

    def _lease_more(self) -> None:
        """Once fewer than a round of checks is leased ahead, lease two rounds: one write per round."""
        if self.ready_count >= self.monitor.concurrency or not self.pending:
            return
        want = 2 * self.monitor.concurrency - self.ready_count
        batch = [self.pending.popleft() for _ in range(min(want, len(self.pending)))]
        claimed = self.service.claim_checks([t.integration_id for t in batch], self.holder)
        for target in batch:
            if target.integration_id in claimed:
                provider_key, config = claimed[target.integration_id]
                self.ready.setdefault(target.host, deque()).append((target.integration_id, provider_key, config))
                self.ready_count += 1
        self.progress = replace(self.progress, busy=self.progress.busy + len(batch) - len(claimed))

    def _start(self, pool: ThreadPoolExecutor) -> None:
        concurrency, per_host = self.monitor.concurrency, self.monitor.per_host
        for host, queue in self.ready.items():
            while queue and len(self.running) < concurrency and self.per_host[host] < per_host:
                integration_id, provider_key, config = queue.popleft()
                self.ready_count -= 1
                self.per_host[host] += 1
                self.busiest = max(self.busiest, self.per_host[host])
                future = pool.submit(self.service.run_stored_test, provider_key, integration_id, config)
                self.running[future] = (integration_id, provider_key)

    def _collect(self, done) -> None:
        connected = failed = 0
        for future in done:
            integration_id, provider_key = self.running.pop(future)
            self.per_host[self.host_of[integration_id]] -= 1
            result = _result_of(future)
            self.unwritten.append(CheckOutcome(integration_id, provider_key, result))
            if result.success:
                connected += 1
            else:
                failed += 1
                self.failures.append((integration_id, result.message))
        self.progress = replace(
            self.progress,
            done=self.progress.done + connected + failed,
            connected=self.progress.connected + connected,
            failed=self.progress.failed + failed,
        )

    def _flush(self) -> None:
        self.service.record_checks(self.actor, self.holder, self.unwritten)
        self.unwritten = []
        self.last_flush = time.monotonic()

    def _release_unstarted(self) -> None:
        """Leases taken ahead for checks a cancel stopped from starting."""
        ids = [integration_id for queue in self.ready.values() for integration_id, _, _ in queue]
        if ids:
            self.service.release_checks(ids, self.holder)
        self.ready.clear()
        self.ready_count = 0
