"""Connection checks of integrations: a test of a saved integration or of a form, and the steps a check of
many (core.integrations.check_all) takes: targets, leases, stored tests, recorded outcomes.

IntegrationChecks is the part of IntegrationService that tests; the service supplies what it declares.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import CursorResult, Table, bindparam, insert, select, update
from sqlalchemy import func as sql_func
from sqlalchemy.orm import Session, sessionmaker

from core import audit, fields
from core.audit import Actor
from core.catalog import Catalog, Provider, TestContext
from core.crypto import DecryptionError, FieldCipher, field_context
from core.errors import StorageError, ValidationError
from core.http import HttpPolicy, deadline, observe
from core.integrations import leases, schedule
from core.integrations.classify import CheckClass, Classified, classify
from core.integrations.configuration import Configurations, secret_values
from core.integrations.health import Health, HealthPolicy, Streak, after_check
from core.models import CheckRecord, CheckRun, CheckRunItem, HealthChange, Integration, User, utcnow
from core.ratelimit import Bucket, RateLimitedError, RateLimiter
from core.results import TestResult, without_secrets
from core.tokens import MemoryTokens, StoredTokens


class _NotDue(Exception):
    """Raised inside the claim's transaction to roll it back: the integration was checked meanwhile."""


MAX_SELECTED = 500  # a selection-scoped run covers at most this many rows (the list shows 50 a page)


@dataclass(frozen=True)
class CheckAllScope:
    """Which active integrations a check-all covers. everyone, tier and provider are for administrators."""

    everyone: bool = False
    tier: str | None = None
    provider: str | None = None
    ids: tuple[int, ...] = ()  # the rows selected on the list: only these (still the person's own for members)


@dataclass(frozen=True)
class CheckTarget:
    integration_id: int
    host: str  # the customer host its test calls (per-host caps); "#<id>" when it calls none


@dataclass(frozen=True)
class CheckOutcome:
    integration_id: int
    provider_key: str
    result: TestResult
    classified: Classified = field(default_factory=lambda: Classified(CheckClass.OK))
    latency_ms: int | None = None
    trigger: str = "manual"  # manual | schedule | check_all
    run_id: int | None = None


@dataclass(frozen=True)
class Recorded:
    """What storing a batch of outcomes did: the health changes it made (for alerts)."""

    changes: list[tuple[int, Health, Health]] = field(default_factory=list)  # (integration id, old, new)


@dataclass(frozen=True)
class EngineClaim:
    """A check the engine may run now: its lease is held and the caps had room."""

    integration_id: int
    provider_key: str
    configuration: dict
    holder: str


class IntegrationChecks:
    """Testing integrations, as part of IntegrationService (which sets these attributes and _load)."""

    _factory: sessionmaker
    _cipher: FieldCipher
    _catalog: Catalog
    _http_session: Callable[[], requests.Session]
    _limiter: RateLimiter | None
    _configurations: Configurations
    health_policy: HealthPolicy
    interval_override: float | None  # CHECK_INTERVAL_SECONDS: one interval for every tier (demos, tests)

    def _load(self, session: Session, actor: Actor, integration_id: int) -> tuple[Integration, str]:
        raise NotImplementedError  # IntegrationService's: the row the actor may see, and its owner's name

    # ----- testing -------------------------------------------------------------------------

    def test(self, actor: Actor, integration_id: int) -> TestResult:
        """Test a saved integration with its stored secrets and record the outcome on it.

        Refused (error "busy") while another check of it runs, in this process or any other; a failed
        result with the database's sentence (error "storage") when the database refuses a write.
        """
        try:
            return self._test_saved(actor, integration_id)
        except StorageError as exc:
            return TestResult(False, str(exc), error="storage")

    def _test_saved(self, actor: Actor, integration_id: int) -> TestResult:
        with self._factory() as session:
            row, _ = self._load(session, actor, integration_id)
            provider = self._catalog.get(row.provider)
            config = copy.deepcopy(row.configuration or {})
            name = row.name
        if refused := self._rate_limited(actor, provider, config, integration_id):
            return refused
        holder = leases.new_holder()
        if not self._claim_one(integration_id, holder):  # someone else's check of it is under way
            return TestResult(False, busy_message(name), error="busy")
        try:
            outcome = self.run_leased(provider.key, integration_id, config, trigger="manual")
        except BaseException:
            self.release_checks([integration_id], holder)
            raise
        self.record_checks(actor, holder, [outcome])
        return outcome.result

    # ----- checks of saved integrations (also for check all) ------------------------------

    def check_targets(self, actor: Actor, scope: CheckAllScope) -> list[CheckTarget]:
        """The active integrations a check-all of this scope covers, with the host each one calls.

        Members always get their own; administrators their own, or everyone's when scope.everyone.
        """
        query = select(Integration.id, Integration.provider, Integration.configuration).where(
            Integration.is_active.is_(True)
        )
        if not (actor.is_admin and (scope.everyone or scope.ids)):
            query = query.where(Integration.owner_id == actor.id)
        if scope.ids:
            query = query.where(Integration.id.in_(scope.ids[:MAX_SELECTED]))
        if scope.provider:
            query = query.where(Integration.provider == scope.provider)
        if scope.tier:
            query = query.join(User, Integration.owner_id == User.id).where(User.tier == scope.tier)
        targets = []
        with self._factory() as session:
            for integration_id, provider_key, config in session.execute(
                query.order_by(Integration.id).execution_options(yield_per=2000)
            ):
                provider = self._catalog.get(provider_key) if provider_key in self._catalog else None
                host = target_host(provider, config or {}) if provider else None
                targets.append(CheckTarget(integration_id, (host or f"#{integration_id}").lower()))
        return targets

    def claim_checks(self, ids: list[int], holder: str) -> dict[int, tuple[str, dict]]:
        """Lease the free ones among ids to holder; returns each leased id's provider and stored configuration."""
        with self._factory.begin() as session:
            return {
                integration_id: (provider, copy.deepcopy(config or {}))
                for integration_id, provider, config in leases.claim(session, ids, holder, self.lease_time())
            }

    def renew_check(self, integration_id: int, holder: str) -> bool:
        """Extend holder's lease on integration_id right before its check starts (one UPDATE).

        False when the lease expired meanwhile or someone else holds it now: then the check must not run.
        """
        with self._factory.begin() as session:
            return leases.renew(session, integration_id, holder, self.lease_time())

    def release_checks(self, ids: list[int], holder: str) -> None:
        with self._factory.begin() as session:
            leases.release(session, ids, holder)

    def run_stored_test(self, provider_key: str, integration_id: int, stored: dict) -> TestResult:
        """Test a saved configuration (the caller holds its lease); safe to call from worker threads."""
        return self._run_test(self._catalog.get(provider_key), stored, integration_id, stored)

    def run_leased(
        self, provider_key: str, integration_id: int, stored: dict, trigger: str, run_id: int | None = None
    ) -> CheckOutcome:
        """Test a saved configuration (the caller holds its lease), timed and classified, ready to record."""
        provider = self._catalog.get(provider_key)
        started = time.monotonic()
        with observe() as seen:
            result = self._run_test(provider, stored, integration_id, stored)
        latency = round((time.monotonic() - started) * 1000)
        return CheckOutcome(integration_id, provider_key, result, classify(result, seen), latency, trigger, run_id)

    def claim_for_engine(
        self,
        integration_id: int,
        max_running: int,
        max_per_host: int,
        due_by: datetime | None = None,
        holder: str | None = None,
    ) -> EngineClaim | str:
        """Lease one integration for a check on the engine, within the caps counted over every worker.

        holder: the lease's holder (a new one when not given). A lease this holder still has is taken
        over: the engine gives each job a holder its retry keeps (core.engine.tasks.job_holder).

        Returns the claim, or why not: "gone" (deleted, inactive, or no longer due by due_by), "busy" (its
        lease is held elsewhere) or "full" (the caps have no room now: try again shortly).
        """
        now = utcnow()
        with self._factory() as session:
            row = session.execute(_TO_CLAIM, {"id": integration_id}).one_or_none()
        if row is None or not row.is_active or row.provider not in self._catalog:
            return "gone"
        if due_by is not None and row.next_check_at is not None and row.next_check_at > due_by:
            return "gone"  # checked meanwhile (a person, or a check-all): the schedule moved on
        provider = self._catalog.get(row.provider)
        host = (target_host(provider, row.configuration or {}) or f"#{integration_id}").lower()
        holder = holder or leases.new_holder()
        try:
            with self._factory.begin() as session:
                if not leases.claim(session, [integration_id], holder, self.lease_time(), host=host):
                    return "busy"
                # Read again under the lease: a check that recorded between the look above and the claim
                # moved the schedule on, and this one is not due any more (the claim is rolled back).
                if due_by is not None:
                    due_now = session.scalar(_NEXT_CHECK_AT, {"id": integration_id})
                    if due_now is not None and due_now > due_by:
                        raise _NotDue
        except _NotDue:
            return "gone"
        with self._factory() as session:
            running, on_host = leases.running(session, host, now)
        if running > max_running or on_host > max_per_host:
            self.release_checks([integration_id], holder)
            return "full"
        return EngineClaim(integration_id, row.provider, copy.deepcopy(row.configuration or {}), holder)

    def record_checks(
        self, actor: Actor | None, holder: str, outcomes: list[CheckOutcome], audit_each: bool = True
    ) -> Recorded:
        """Store each outcome: the integration's status and health, a history row, a health change when
        its state moves (the alert outbox), and free its lease: one transaction for all.

        An outcome is stored only while holder still holds the lease, so a late result never overwrites
        a newer check's. A scheduled check is not audited one by one (audit_each=False): its history row
        is its record, and every change of health is audited.
        """
        if not outcomes:
            return Recorded()
        now = utcnow()
        ids = [o.integration_id for o in outcomes]
        with self._factory.begin() as session:
            current = {row.id: row for row in session.execute(_TO_RECORD, {"ids": ids, "holder": holder})}
            rows, history, changes, moved = [], [], [], []
            for o in outcomes:
                row = current.get(o.integration_id)
                if row is None:  # the lease was lost: a newer check's result stands
                    continue
                before = Streak(Health.parse(row.health), row.failures_in_row, row.successes_in_row, row.failing_since)
                after = after_check(before, o.result.success, o.classified.needs_reconnect, now, self.health_policy)
                interval = schedule.interval_for(row.tier, after.health, self.interval_override)
                message = o.result.message if o.result.success else (o.result.error or o.result.message)
                rows.append(
                    {
                        "target_id": o.integration_id,
                        "holder": holder,
                        "now": now,
                        "old_health": row.health,
                        "new_status": "connected" if o.result.success else "error",
                        "new_message": message,
                        "new_health": after.health.value,
                        "changed_at": now if after.health != before.health else None,
                        "failures": after.failures_in_row,
                        "successes": after.successes_in_row,
                        "since": after.failing_since,
                        "check_class": o.classified.check_class.value,
                        "next_at": schedule.next_due(now, interval),
                        "active": after.health is not Health.PAUSED,
                    }
                )
                history.append(_history_row(o, now))
                if after.health != before.health:
                    moved.append((o.integration_id, before.health, after.health))
                    changes.append(
                        {
                            "integration_id": o.integration_id,
                            "at": now,
                            "old": before.health.value,
                            "new": after.health.value,
                            "check_class": o.classified.check_class.value,
                            "message": o.result.message,
                        }
                    )
            stored = 0
            if rows:
                stored = cast(CursorResult, session.connection().execute(_RECORD_STATEMENT, rows)).rowcount
                session.execute(insert(CheckRecord), history)
            # The UPDATE above freed the leases of those it stored. Those whose health a person changed
            # meanwhile keep theirs: free them. (An executemany's rowcount is not reliable on every
            # driver, so only one outcome stored, the engine's case, skips this.)
            if not (len(ids) == 1 and stored == 1):
                leases.release(session, ids, holder)
            if audit_each:
                events = [_test_event(o.provider_key, o.result, o.integration_id) for o in outcomes]
                audit.record_many(session, actor, events)
            if changes:
                session.execute(insert(HealthChange), changes)
                audit.record_many(
                    session,
                    None,
                    [
                        (
                            "integration.health_changed",
                            "success",
                            c["integration_id"],
                            {"from": c["old"], "to": c["new"]},
                        )
                        for c in changes
                    ],
                )
            _count_run_results(
                session, [o for o in outcomes if o.run_id is not None and o.integration_id in current], now
            )
        return Recorded(moved)

    def record_refused_refresh(self, integration_id: int, message: str, code: str | None) -> Recorded:
        """A provider refused the refresh token (invalid_grant, ...): the integration needs reconnecting.

        Stored like a failed check (a history row of class auth), so its page and its health say so."""
        holder = leases.new_holder()
        with self._factory.begin() as session:
            if not leases.claim(session, [integration_id], holder, self.lease_time()):
                return Recorded()  # a check of it runs now and will find the same refusal
        row_provider = self._provider_key(integration_id)
        result = TestResult(False, message, error=message)
        outcome = CheckOutcome(
            integration_id, row_provider, result, Classified(CheckClass.AUTH, None, code, True), None, "refresh"
        )
        return self.record_checks(None, holder, [outcome], audit_each=False)

    def _provider_key(self, integration_id: int) -> str:
        with self._factory() as session:
            return session.scalar(select(Integration.provider).where(Integration.id == integration_id)) or ""

    def test_configuration(
        self, actor: Actor, provider_key: str, configuration: dict, integration_id: int | None = None
    ) -> TestResult:
        """Test what a form holds before it is saved. Masked or empty secrets come from storage.

        A failed result with the database's sentence (error "storage") when the database refuses a write."""
        try:
            return self._test_form(actor, provider_key, configuration, integration_id)
        except StorageError as exc:
            return TestResult(False, str(exc), error="storage")

    def _test_form(
        self, actor: Actor, provider_key: str, configuration: dict, integration_id: int | None
    ) -> TestResult:
        provider = self._catalog.get(provider_key)
        stored, name = None, ""  # name is only used with an integration_id, and then is its name
        if integration_id is not None:
            with self._factory() as session:
                row, _ = self._load(session, actor, integration_id)
                stored, name = copy.deepcopy(row.configuration or {}), row.name
            stored = self._store_upgraded(provider, integration_id, stored)
        if not provider.available:
            return TestResult(False, f"{provider.name} is coming soon and cannot be tested yet.", error="not available")
        try:
            sealed = self._configurations.sealed(provider, configuration, stored, integration_id)
        except ValidationError as exc:
            return TestResult(
                False, "Fix the highlighted fields, then test again.", {"field_errors": exc.errors}, str(exc)
            )
        if refused := self._rate_limited(actor, provider, sealed, integration_id):
            return refused
        if integration_id is None:
            result = self._run_test(provider, sealed, None, None)
        else:
            # It uses the stored secrets and tokens (and may rotate them): one check at a time, as any other.
            holder = leases.new_holder()
            if not self._claim_one(integration_id, holder):
                return TestResult(False, busy_message(name), error="busy")
            try:
                result = self._run_test(provider, sealed, integration_id, stored)
            finally:
                self.release_checks([integration_id], holder)
        with self._factory.begin() as session:
            self._audit_test(session, actor, provider.key, result, integration_id)
        return result

    def _store_upgraded(self, provider: Provider, integration_id: int, stored: dict) -> dict:
        """The stored configuration in the provider's current shape (Provider.upgrade), written back when it was
        older, so that a secret the form's test rotates replaces the very field the test used. A plain UPDATE (the
        same settings and secrets, not an edit), only while the row still holds what was read."""
        upgraded = self._configurations.upgraded(provider, stored, integration_id)
        if upgraded is stored or upgraded is None:
            return stored
        with self._factory.begin() as session:
            row = session.get(Integration, integration_id)
            if row is None or row.configuration != stored:
                return stored
            session.execute(
                update(Integration)
                .where(Integration.id == integration_id)
                .values(configuration=upgraded)
                .execution_options(synchronize_session=False)
            )
        return upgraded

    def lease_time(self) -> timedelta:
        """How long a check's lease lasts: longer than the check's deadline (core.integrations.leases.lease_time).

        Read once from the session factory's policy, which does not change: the engine asks on every job."""
        known = getattr(self, "_known_lease_time", None)
        if known is None:
            session = self._http_session()
            try:
                known = leases.lease_time(_policy_of(session))
            finally:
                session.close()
            self._known_lease_time = known
        return known

    def _claim_one(self, integration_id: int, holder: str) -> bool:
        with self._factory.begin() as session:
            return bool(leases.claim(session, [integration_id], holder, self.lease_time()))

    def _rate_limited(self, actor: Actor, provider: Provider, config: dict, integration_id: int | None):
        """A refusal (as a failed TestResult) when the person or the target host is over its test limit."""
        if self._limiter is None:
            return None
        buckets = [(Bucket("test_per_user", str(actor.id)), "connection tests")]
        if host := target_host(provider, config):
            buckets.append((Bucket("test_per_host", host), f"connection tests of {host}"))
        try:
            for bucket, what in buckets:
                self._limiter.check(bucket, what)
        except RateLimitedError as exc:
            audit.record_now(
                self._factory,
                actor,
                "integration.test",
                "denied",
                integration_id=integration_id,
                details={"provider": provider.key, "reason": "rate limit"},
            )
            return TestResult(False, str(exc), {"retryAfter": exc.retry_after}, error="rate_limited")
        for bucket, _ in buckets:
            self._limiter.hit(bucket)
        return None

    def _run_test(
        self, provider: Provider, sealed: dict, integration_id: int | None = None, stored: dict | None = None
    ) -> TestResult:
        if not provider.available or provider.test is None:
            return TestResult(False, f"{provider.name} is coming soon and cannot be tested yet.", error="not available")
        try:
            plain = self._configurations.plain(provider, sealed, integration_id)
        except DecryptionError as exc:
            return TestResult(False, "A stored secret could not be decrypted. Re-enter it and save.", error=str(exc))
        if refused := _unsendable(provider, plain):  # stored before these characters were refused
            return refused
        secrets = secret_values(provider, plain)
        session = self._http_session()
        context = self._test_context(session, sealed, integration_id, stored)
        try:
            with deadline(_policy_of(session).check_deadline):  # what leases.lease_time outlives
                result = provider.test(plain, context)
        except Exception as exc:
            result = TestResult(
                False, f"The {provider.name} test failed unexpectedly ({type(exc).__name__}).", error=str(exc)
            )
        finally:
            session.close()
        return without_secrets(result, secrets)

    def stored_context(self, http: requests.Session, integration_id: int, stored: dict) -> TestContext:
        """What a provider working with the stored configuration gets (core.integrations.refresh): the
        integration's token cache, and a rotate_secret that keeps a rotated secret unless it changed meanwhile."""
        return self._test_context(http, stored, integration_id, stored)

    def _test_context(
        self, http: requests.Session, sealed: dict, integration_id: int | None, stored: dict | None
    ) -> TestContext:
        if integration_id is None or stored is None:
            return TestContext(http, MemoryTokens())

        def rotate_secret(field_name: str, value: str) -> None:
            # Only when the test used the stored secret; an edited form's new secret is saved by its owner.
            if fields.get_path(sealed, field_name) == fields.get_path(stored, field_name):
                self._replace_secret(integration_id, field_name, fields.get_path(stored, field_name), value)

        return TestContext(http, StoredTokens(self._factory, self._cipher, integration_id), rotate_secret)

    def _replace_secret(self, integration_id: int, field_name: str, old_sealed: str | None, value: str) -> None:
        """Store a provider's rotated secret, unless someone changed that secret meanwhile."""
        with self._factory.begin() as session:
            row = session.get(Integration, integration_id)
            if row is None or fields.get_path(row.configuration or {}, field_name) != old_sealed:
                return
            config = copy.deepcopy(row.configuration)
            fields.set_path(config, field_name, self._cipher.encrypt(value, field_context(integration_id, field_name)))
            # A plain UPDATE: a rotation is not an edit and must not make an open edit conflict.
            session.execute(
                update(Integration)
                .where(Integration.id == integration_id)
                .values(configuration=config)
                .execution_options(synchronize_session=False)
            )
            audit.record(session, None, "integration.secret_rotated", "success", integration_id, {"field": field_name})

    def _audit_test(
        self, session: Session, actor: Actor, provider_key: str, result: TestResult, integration_id: int | None
    ) -> None:
        audit.record(session, actor, *_test_event(provider_key, result, integration_id))


def _record_statement():
    """One UPDATE per outcome (executemany): status, health and schedule, only while holder holds the lease
    and nobody changed the health meanwhile (a person pausing it wins over a check that was under way).
    Built once: every check runs it."""
    # SQLAlchemy types __table__ as any FromClause; a declarative class with a __tablename__ has a Table.
    table = cast(Table, Integration.__table__)
    return (
        table.update()
        .where(
            table.c.id == bindparam("target_id"),
            table.c.check_lease_holder == bindparam("holder"),
            table.c.health == bindparam("old_health"),
        )
        .values(
            status=bindparam("new_status"),
            status_message=bindparam("new_message"),
            last_checked_at=bindparam("now"),
            health=bindparam("new_health"),
            health_changed_at=sql_func.coalesce(bindparam("changed_at"), table.c.health_changed_at),
            failures_in_row=bindparam("failures"),
            successes_in_row=bindparam("successes"),
            failing_since=bindparam("since"),
            last_check_class=bindparam("check_class"),
            next_check_at=bindparam("next_at"),
            planned_until=None,
            is_active=bindparam("active"),
            check_lease_until=None,
            check_lease_holder=None,
            check_lease_host=None,
        )
    )


_RECORD_STATEMENT = _record_statement()


def _history_row(o: CheckOutcome, now: datetime) -> dict:
    return {
        "integration_id": o.integration_id,
        "at": now,
        "success": o.result.success,
        "check_class": o.classified.check_class.value,
        "latency_ms": o.latency_ms,
        "http_status": o.classified.http_status,
        "code": o.classified.code,
        "message": (o.result.message if o.result.success else (o.result.error or o.result.message))[:2000],
        "trigger": o.trigger,
        "run_id": o.run_id,
    }


def _count_run_results(session: Session, outcomes: list[CheckOutcome], now: datetime) -> None:
    """Mark check-all items done and count them on their run (an item counts once, however often it ran)."""
    for o in outcomes:
        done = session.execute(_ITEM_DONE, {"the_run": o.run_id, "the_integration": o.integration_id})
        if cast(CursorResult, done).rowcount == 1:
            ok = o.result.success
            session.execute(_RUN_COUNTED, {"the_run": o.run_id, "ok": int(ok), "not_ok": int(not ok), "now": now})


# Built once with bound parameters: every engine check runs these, and building a statement costs
# SQLAlchemy more than running it.
_TO_CLAIM = select(
    Integration.provider, Integration.configuration, Integration.is_active, Integration.next_check_at
).where(Integration.id == bindparam("id"))
_NEXT_CHECK_AT = select(Integration.next_check_at).where(Integration.id == bindparam("id"))
_TO_RECORD = (
    select(
        Integration.id,
        Integration.name,
        Integration.health,
        Integration.failures_in_row,
        Integration.successes_in_row,
        Integration.failing_since,
        User.tier,
    )
    .join(User, Integration.owner_id == User.id)
    .where(Integration.id.in_(bindparam("ids", expanding=True)), Integration.check_lease_holder == bindparam("holder"))
)
_ITEM_DONE = (
    update(CheckRunItem)
    .where(
        CheckRunItem.run_id == bindparam("the_run"),
        CheckRunItem.integration_id == bindparam("the_integration"),
        CheckRunItem.state.in_(("pending", "running")),
    )
    .values(state="done")
    .execution_options(synchronize_session=False)
)
_RUN_COUNTED = (
    update(CheckRun)
    .where(CheckRun.id == bindparam("the_run"))
    .values(
        done=CheckRun.done + 1,
        connected=CheckRun.connected + bindparam("ok"),
        failed=CheckRun.failed + bindparam("not_ok"),
        progress_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)


def _test_event(provider_key: str, result: TestResult, integration_id: int | None) -> tuple[str, str, int | None, dict]:
    """The audit event of a connection test: (action, outcome, integration id, details)."""
    outcome = "success" if result.success else "failure"
    return "integration.test", outcome, integration_id, {"provider": provider_key, "message": result.message}


def _policy_of(session: requests.Session) -> HttpPolicy:
    policy = getattr(session, "policy", None)
    return policy if isinstance(policy, HttpPolicy) else HttpPolicy()


def busy_message(name: str) -> str:
    return f"{name} is being checked right now (by you or a colleague). Its result appears when that check finishes."


def target_host(provider: Provider, config: dict) -> str | None:
    """The customer host a test will call: the first web address or host field of the configuration."""
    for spec in provider.fields:
        value = fields.get_path(config, spec.name)
        if not isinstance(value, str) or not value.strip():
            continue
        if spec.type == "url":
            return urlsplit(value.strip()).hostname
        if spec.name == "host":
            return value.strip().lower()
    return None


def _unsendable(provider: Provider, plain: dict) -> TestResult | None:
    """A failed result naming the first field whose stored text cannot be sent, or None."""
    for spec in provider.fields:
        value = fields.get_path(plain, spec.name)
        if isinstance(value, str) and fields.text_problem(value, multiline=spec.type in fields.MULTILINE_TYPES):
            message = (
                f"The stored {spec.label} holds characters that cannot be sent (a control character or half "
                "of a UTF-16 pair). Edit the integration, enter it again and save."
            )
            return TestResult(False, message, error="unsendable stored value")
    return None


__all__ = [
    "CheckAllScope",
    "CheckOutcome",
    "CheckTarget",
    "EngineClaim",
    "IntegrationChecks",
    "Recorded",
    "busy_message",
    "target_host",
]
