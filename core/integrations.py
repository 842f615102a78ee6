"""IntegrationService: the only path to integrations, for pages, CLI and tests alike.

Ownership, tier limits, validation, encryption, optimistic locking and auditing live here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import ColumnElement, Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from core import audit, fields, leases, tiers
from core.audit import Actor
from core.catalog import Catalog, Provider, TestContext, TestResult
from core.crypto import DecryptionError, FieldCipher, field_context, is_encrypted
from core.errors import (
    ConflictError,
    DatabaseBusyError,
    NotFoundError,
    StorageError,
    TierLimitError,
    ValidationError,
    conflict,
)
from core.http import HttpPolicy, deadline
from core.models import AuditEvent, Integration, User, utcnow
from core.ratelimit import Bucket, RateLimitedError, RateLimiter
from core.results import without_secrets
from core.tokens import MemoryTokens, StoredTokens

MAX_NAME_LENGTH = 200
DEFAULT_STALE_AFTER = timedelta(hours=24)
MAX_PAGE_SIZE = 200
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegrationView:
    """What callers see: the configuration with every sensitive value masked."""

    id: int
    name: str
    type: str
    provider: str
    provider_name: str
    configuration: dict
    is_active: bool
    status: str
    status_message: str | None
    last_checked_at: datetime | None
    version: int
    owner: str
    created_at: datetime
    updated_at: datetime
    stale: bool = False  # active, and not checked within the stale age (counted from creation if never)


@dataclass(frozen=True)
class ListQuery:
    """A page of the integrations list: a search over name (and owner, for admins, or #id), filters."""

    search: str = ""
    status: str | None = None  # connected | error | unknown | stale
    provider: str | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class ListPage:
    views: list[IntegrationView]
    total: int  # every match, not just this page
    offset: int
    limit: int


@dataclass(frozen=True)
class CheckScope:
    """Which active integrations a check-all covers. everyone, tier and provider are for administrators."""

    everyone: bool = False
    tier: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class CheckTarget:
    integration_id: int
    host: str  # the customer host its test calls (per-host caps); "#<id>" when it calls none


@dataclass(frozen=True)
class CheckOutcome:
    integration_id: int
    provider_key: str
    result: TestResult


@dataclass(frozen=True)
class Stats:
    total: int
    active: int
    inactive: int
    error: int
    stale: int = 0


class IntegrationService:
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        catalog: Catalog,
        http_session: Callable[[], requests.Session],
        limiter: RateLimiter | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
    ):
        self._factory = factory
        self.stale_after = stale_after
        self._cipher = cipher
        self._catalog = catalog
        self._http_session = http_session
        self._limiter = limiter

    # ----- reading -------------------------------------------------------------------------

    def _visible(self, actor: Actor):
        query = select(Integration, User.username).join(User, Integration.owner_id == User.id)
        return query if actor.is_admin else query.where(Integration.owner_id == actor.id)

    def _view(self, row: Integration, owner: str) -> IntegrationView:
        provider = self._catalog.get(row.provider) if row.provider in self._catalog else None
        specs = provider.fields if provider else ()
        return IntegrationView(
            id=row.id,
            name=row.name,
            type=row.type,
            provider=row.provider,
            provider_name=provider.name if provider else row.provider,
            configuration=fields.masked(specs, row.configuration or {}),
            is_active=row.is_active,
            status=row.status,
            status_message=row.status_message,
            last_checked_at=row.last_checked_at,
            version=row.version,
            owner=owner,
            created_at=row.created_at,
            updated_at=row.updated_at,
            stale=row.is_active and (row.last_checked_at or row.created_at) < utcnow() - self.stale_after,
        )

    def list_integrations(self, actor: Actor) -> list[IntegrationView]:
        return self.matching(actor, ListQuery())

    def matching(self, actor: Actor, query: ListQuery) -> list[IntegrationView]:
        """Every integration the actor can see that matches the query's search and filters (no paging)."""
        listing = self._visible(actor).where(*self._list_conditions(actor, query))
        with self._factory() as session:
            rows = session.execute(listing.order_by(Integration.name, Integration.id))
            return [self._view(row, owner) for row, owner in rows]

    def page(self, actor: Actor, query: ListQuery) -> ListPage:
        """One page of the integrations the actor can see, filtered and counted in SQL (any table size)."""
        conditions = self._list_conditions(actor, query)
        listing = self._visible(actor).where(*conditions).order_by(Integration.name, Integration.id)
        counting = select(func.count(Integration.id)).join(User, Integration.owner_id == User.id).where(*conditions)
        if not actor.is_admin:
            counting = counting.where(Integration.owner_id == actor.id)
        limit = max(1, min(query.limit, MAX_PAGE_SIZE))
        with self._factory() as session:
            total = int(session.scalar(counting) or 0)
            offset = min(max(0, query.offset), max(0, (total - 1) // limit * limit))
            rows = session.execute(listing.offset(offset).limit(limit))
            return ListPage([self._view(row, owner) for row, owner in rows], total, offset, limit)

    def _list_conditions(self, actor: Actor, query: ListQuery) -> list:
        conditions = []
        if text := query.search.strip()[:100]:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matches: list[ColumnElement[bool]] = [Integration.name.ilike(pattern, escape="\\")]
            if actor.is_admin:
                matches.append(User.username.ilike(pattern, escape="\\"))
            if text.lstrip("#").isdigit():
                matches.append(Integration.id == int(text.lstrip("#")))
            conditions.append(or_(*matches))
        if query.provider:
            conditions.append(Integration.provider == query.provider)
        if query.status == "stale":
            conditions.append(self.stale_condition())
        elif query.status:
            conditions.append(Integration.status == query.status)
        return conditions

    def names(self, actor: Actor, ids: list[int] | None = None, limit: int = 1000) -> dict[int, str]:
        """Names of the given integrations the actor can see, or (ids None) the first `limit` by name."""
        query = select(Integration.id, Integration.name).order_by(Integration.name, Integration.id)
        if not actor.is_admin:
            query = query.where(Integration.owner_id == actor.id)
        query = query.where(Integration.id.in_(ids)) if ids is not None else query.limit(limit)
        with self._factory() as session:
            return dict(session.execute(query).all())

    def get(self, actor: Actor, integration_id: int) -> IntegrationView:
        with self._factory() as session:
            row, owner = self._load(session, actor, integration_id)
            return self._view(row, owner)

    def stats(self, actor: Actor) -> Stats:
        """Total, active, inactive, in-error and stale counts from one aggregate query."""
        query = select(
            func.count(Integration.id),
            func.coalesce(func.sum(case((Integration.is_active.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((Integration.status == "error", 1), else_=0)), 0),
            func.coalesce(func.sum(case((self.stale_condition(), 1), else_=0)), 0),
        )
        if not actor.is_admin:
            query = query.where(Integration.owner_id == actor.id)
        with self._factory() as session:
            total, active, error, stale = session.execute(query).one()
        return Stats(
            total=int(total), active=int(active), inactive=int(total) - int(active), error=int(error), stale=int(stale)
        )

    def stale_condition(self):
        return stale_condition(utcnow() - self.stale_after)

    def usage(self, actor: Actor) -> tuple[int, int]:
        """(integrations the actor owns, what their tier allows; tiers.UNLIMITED for no limit)."""
        with self._factory() as session:
            used = session.scalar(select(func.count(Integration.id)).where(Integration.owner_id == actor.id)) or 0
        return int(used), tiers.limit("integrations", tiers.Tier.parse(actor.tier))

    def counts_by_provider_and_status(self, actor: Actor) -> list[tuple[str, str, int]]:
        query = select(Integration.provider, Integration.status, func.count(Integration.id)).group_by(
            Integration.provider, Integration.status
        )
        if not actor.is_admin:
            query = query.where(Integration.owner_id == actor.id)
        with self._factory() as session:
            return [
                (self._provider_name(p), status, int(n))
                for p, status, n in session.execute(query.order_by(Integration.provider))
            ]

    def _provider_name(self, key: str) -> str:
        return self._catalog.get(key).name if key in self._catalog else key

    def _load(self, session: Session, actor: Actor, integration_id: int) -> tuple[Integration, str]:
        found = session.execute(self._visible(actor).where(Integration.id == integration_id)).first()
        if found is None:
            # Someone else's integration is reported exactly like a missing one.
            raise NotFoundError(f"Integration {integration_id} was not found.")
        return found[0], found[1]

    # ----- rules ---------------------------------------------------------------------------

    def _provider_for_create(self, actor: Actor, provider_key: str) -> Provider:
        provider = self._catalog.get(provider_key)
        tier = tiers.Tier.parse(actor.tier)
        if not provider.available:
            raise ValidationError({"provider": f"{provider.name} is coming soon and cannot be connected yet."})
        if provider.category in tiers.FEATURE_MIN_TIER:
            tiers.check_feature(provider.category, tier, _kind_phrase(provider.category))
        if not tiers.allows(tier, provider.min_tier):
            raise TierLimitError(
                f"{provider.name} needs the {provider.min_tier.label} tier or higher; yours is {tier.label}."
            )
        return provider

    def _check_name(self, name: str) -> str:
        name = (name or "").strip()
        if not name:
            raise ValidationError({"name": "Give the integration a name."})
        if len(name) > MAX_NAME_LENGTH:
            raise ValidationError({"name": f"Keep the name under {MAX_NAME_LENGTH} characters."})
        if problem := fields.text_problem(name):
            raise ValidationError({"name": problem})
        return name

    def _sealed(self, provider: Provider, submitted: dict, stored: dict | None, integration_id: int | None) -> dict:
        """Validate, normalise and encrypt a submitted configuration, merged with what is stored.

        A sensitive field that comes back as the mask or empty keeps its stored ciphertext; one whose
        new value equals the stored plaintext is not re-encrypted. Each secret is bound to the
        integration and field (None: a form that is not saved yet).
        """
        return self._seal(provider, self._checked(provider, submitted, stored), stored, integration_id)

    def _checked(self, provider: Provider, submitted: dict, stored: dict | None) -> dict:
        """Validate and normalise (ValidationError otherwise), writing nothing and encrypting nothing.

        Sensitive values are plaintext, except those kept from storage, which are their ciphertext.
        """
        stored = stored or {}
        merged, kept = copy.deepcopy(stored), set()
        for spec in provider.fields:
            value = fields.get_path(submitted, spec.name)
            unchanged_secret = spec.sensitive and (fields.is_blank(value) or value == fields.MASK)
            if unchanged_secret and not fields.is_blank(fields.get_path(stored, spec.name)):
                kept.add(spec.name)
                continue
            fields.set_path(merged, spec.name, None if unchanged_secret else value)
        as_submitted = copy.deepcopy(merged)
        for name in kept:
            fields.delete_path(as_submitted, name)  # stored ciphertext is not input to validate
        errors = fields.validate(provider.fields, as_submitted, keep_secrets=kept)
        if not errors and provider.check:
            errors = {k: v for k, v in provider.check(as_submitted).items() if k not in kept}
        if errors:
            raise ValidationError(errors)
        clean = fields.normalise(provider.fields, merged)
        if provider.prepare:
            clean = provider.prepare(clean)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(clean, name)
            if fields.is_blank(value):
                fields.delete_path(clean, name)
            elif is_encrypted(value) and value != fields.get_path(stored, name):
                # Never accept someone's ciphertext as input: a test would decrypt it and send the
                # plaintext wherever the form points.
                raise ValidationError({name: "Enter the secret itself, not an encrypted value."})
        return clean

    def _seal(self, provider: Provider, clean: dict, stored: dict | None, integration_id: int | None) -> dict:
        """Encrypt the checked configuration's secrets, bound to this integration and field."""
        sealed = copy.deepcopy(clean)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(sealed, name)
            if not fields.is_blank(value):
                stored_value = fields.get_path(stored or {}, name)
                fields.set_path(sealed, name, self._seal_value(name, value, stored_value, integration_id))
        return sealed

    def _seal_value(self, name: str, value: str, stored_value: str | None, integration_id: int | None) -> str:
        if value == stored_value and is_encrypted(value):
            return value
        if is_encrypted(value):
            raise ValidationError({name: "Enter the secret itself, not an encrypted value."})
        context = field_context(integration_id, name)
        if is_encrypted(stored_value):
            try:
                if self._cipher.decrypt(stored_value, context) == value:
                    return stored_value
            except DecryptionError:
                pass
        return self._cipher.encrypt(value, context)

    def _plain(self, provider: Provider, config: dict, integration_id: int | None) -> dict:
        """A decrypted copy, only ever handed to a connection test or a core service.

        A secret opens only as the field of the integration it was written for (None: an unsaved form).
        """
        plain = copy.deepcopy(config)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(plain, name)
            if isinstance(value, str) and is_encrypted(value):
                fields.set_path(plain, name, self._cipher.decrypt(value, field_context(integration_id, name)))
        return plain

    def credentials_for(self, actor: Actor, integration_id: int, provider_key: str) -> dict:
        """The decrypted configuration of the actor's active integration, for core services only.

        Used by services such as the helpdesk that call the integration's API on the actor's behalf.
        Never hand the result to a page, a log or an audit record.
        """
        with self._factory() as session:
            row, _ = self._load(session, actor, integration_id)
            if row.provider != provider_key:
                raise NotFoundError(
                    f"Integration {integration_id} is not a {self._provider_name(provider_key)} integration."
                )
            if not row.is_active:
                raise ValidationError(
                    {"integration": f"{row.name} is inactive. Activate it on the Integrations page first."}
                )
            config = copy.deepcopy(row.configuration or {})
        try:
            return self._plain(self._catalog.get(provider_key), config, integration_id)
        except DecryptionError as exc:
            raise ValidationError(
                {"integration": "A stored secret could not be decrypted. Re-enter it and save."}
            ) from exc

    def list_for_provider(self, actor: Actor, provider_key: str, active_only: bool = True) -> list[IntegrationView]:
        """The actor's own integrations of one provider (admins too: helpdesk work acts as oneself)."""
        query = (
            select(Integration, User.username)
            .join(User, Integration.owner_id == User.id)
            .where(Integration.owner_id == actor.id, Integration.provider == provider_key)
            .order_by(Integration.name, Integration.id)
        )
        if active_only:
            query = query.where(Integration.is_active.is_(True))
        with self._factory() as session:
            return [self._view(row, owner) for row, owner in session.execute(query)]

    # ----- writing -------------------------------------------------------------------------

    def create(self, actor: Actor, name: str, provider_key: str, configuration: dict) -> IntegrationView:
        provider = self._provider_for_create(actor, provider_key)
        name = self._check_name(name)
        clean = self._checked(provider, configuration, None)  # every check before any write
        secretless = copy.deepcopy(clean)
        for secret_name in fields.sensitive_names(provider.fields):
            fields.delete_path(secretless, secret_name)
        with self._transaction() as session:
            session.execute(select(User.id).where(User.id == actor.id).with_for_update())
            used = session.scalar(select(func.count(Integration.id)).where(Integration.owner_id == actor.id)) or 0
            try:
                tiers.check_limit("integrations", tiers.Tier.parse(actor.tier), used, "integrations")
            except TierLimitError:
                audit.record_now(
                    self._factory,
                    actor,
                    "integration.create",
                    "denied",
                    details={"provider": provider.key, "reason": "tier limit"},
                )
                raise
            row = Integration(
                owner_id=actor.id,
                name=name,
                type=provider.category,
                provider=provider.key,
                configuration=secretless,
                is_active=True,
                status="unknown",
            )
            session.add(row)
            session.flush()
            # The secrets are bound to the row's id, known only now; written in the same transaction by
            # a plain UPDATE so that creating stays version 1.
            sealed = self._seal(provider, clean, None, row.id)
            if sealed != secretless:
                session.execute(
                    update(Integration)
                    .where(Integration.id == row.id)
                    .values(configuration=sealed, updated_at=row.updated_at)
                    .execution_options(synchronize_session=False)
                )
                set_committed_value(row, "configuration", sealed)
            audit.record(
                session, actor, "integration.create", "success", row.id, {"name": name, "provider": provider.key}
            )
            view = self._view(row, actor.username)
        return view

    def update(
        self,
        actor: Actor,
        integration_id: int,
        expected_version: int,
        name: str | None = None,
        configuration: dict | None = None,
    ) -> IntegrationView:
        with self._transaction(integration_id) as session:
            row, owner = self._load(session, actor, integration_id)
            self._check_version(session, row, expected_version)
            provider = self._catalog.get(row.provider)
            changed = []
            if name is not None and self._check_name(name) != row.name:
                row.name = self._check_name(name)
                changed.append("name")
            if configuration is not None:
                sealed = self._sealed(provider, configuration, row.configuration, row.id)
                changed += _changed_fields(row.configuration or {}, sealed)
                if sealed != row.configuration:
                    row.configuration = sealed
                    row.status, row.status_message = "unknown", "Configuration changed since the last test."
            if changed:
                audit.record(session, actor, "integration.update", "success", row.id, {"fields": changed})
            session.flush()
            return self._view(row, owner)

    def set_active(self, actor: Actor, integration_id: int, active: bool) -> IntegrationView:
        with self._transaction() as session:
            row, _ = self._load(session, actor, integration_id)
            if row.is_active != active:
                # A plain UPDATE: switching on or off is not an edit and must not bump the version.
                session.execute(
                    update(Integration)
                    .where(Integration.id == integration_id)
                    .values(is_active=active)
                    .execution_options(synchronize_session=False)
                )
                action = "integration.activate" if active else "integration.deactivate"
                audit.record(session, actor, action, "success", row.id, {"name": row.name})
        return self.get(actor, integration_id)

    def delete(self, actor: Actor, integration_id: int, expected_version: int | None = None) -> None:
        with self._transaction(integration_id) as session:
            row, _ = self._load(session, actor, integration_id)
            if expected_version is not None:
                self._check_version(session, row, expected_version)
            details = {"name": row.name, "provider": row.provider}
            audit.record(session, actor, "integration.delete", "success", row.id, details)
            session.delete(row)

    @contextmanager
    def _transaction(self, integration_id: int | None = None) -> Iterator[Session]:
        """One all-or-nothing write. A database failure leaves every stored record as it was.

        The ORM's UPDATE carries "AND version = <the version checked>" (version_id_col), so of two saves
        from the same version only one can match; the other ends here as a ConflictError.
        """
        try:
            with self._factory.begin() as session:
                yield session
        except StaleDataError as exc:
            with self._factory() as session:
                raise self._conflict(session, integration_id) from exc
        except DatabaseBusyError:
            raise  # its own sentence: busy, try again in a moment
        except SQLAlchemyError as exc:
            # The statement's parameters are not logged: only the kind of failure.
            log.error("integration write failed: %s", type(exc).__name__)
            raise StorageError(
                "The database did not accept the change, so nothing was saved. Try again in a moment."
            ) from exc

    def _check_version(self, session: Session, row: Integration, expected_version: int) -> None:
        if row.version != expected_version:
            raise self._conflict(session, row.id)

    @staticmethod
    def _conflict(session: Session, integration_id: int | None) -> ConflictError:
        """The refusal of a stale save, naming who saved the newer version and when (the audit trail)."""
        last = None
        if integration_id is not None:
            last = session.execute(
                select(AuditEvent.actor, AuditEvent.at)
                .where(
                    AuditEvent.integration_id == integration_id,
                    AuditEvent.action == "integration.update",
                    AuditEvent.outcome == "success",
                )
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                .limit(1)
            ).first()
        if last is None and integration_id is not None:
            at = session.scalar(select(Integration.updated_at).where(Integration.id == integration_id))
            return conflict("this integration", None, at)
        return conflict("this integration", *(last or (None, None)))

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
            result = self._run_test(provider, config, integration_id, config)
        except BaseException:
            self.release_checks([integration_id], holder)
            raise
        self.record_checks(actor, holder, [CheckOutcome(integration_id, provider.key, result)])
        return result

    # ----- checks of saved integrations (also for the health monitor) ------------------------------

    def check_targets(self, actor: Actor, scope: CheckScope) -> list[CheckTarget]:
        """The active integrations a check-all of this scope covers, with the host each one calls.

        Members always get their own; administrators their own, or everyone's when scope.everyone.
        """
        query = select(Integration.id, Integration.provider, Integration.configuration).where(
            Integration.is_active.is_(True)
        )
        if not (actor.is_admin and scope.everyone):
            query = query.where(Integration.owner_id == actor.id)
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
                host = _target_host(provider, config or {}) if provider else None
                targets.append(CheckTarget(integration_id, (host or f"#{integration_id}").lower()))
        return targets

    def claim_checks(self, ids: list[int], holder: str) -> dict[int, tuple[str, dict]]:
        """Lease the free ones among ids to holder; returns each leased id's provider and stored configuration."""
        with self._factory.begin() as session:
            return {
                integration_id: (provider, copy.deepcopy(config or {}))
                for integration_id, provider, config in leases.claim(session, ids, holder, self._lease_time())
            }

    def release_checks(self, ids: list[int], holder: str) -> None:
        with self._factory.begin() as session:
            leases.release(session, ids, holder)

    def run_stored_test(self, provider_key: str, integration_id: int, stored: dict) -> TestResult:
        """Test a saved configuration (the caller holds its lease); safe to call from worker threads."""
        return self._run_test(self._catalog.get(provider_key), stored, integration_id, stored)

    def record_checks(self, actor: Actor, holder: str, outcomes: list[CheckOutcome]) -> None:
        """Store each outcome on its integration, audit it and free its lease: one transaction for all.

        An outcome is stored only while holder still holds the lease, so a late result never overwrites
        a newer check's.
        """
        if not outcomes:
            return
        now = utcnow()
        # SQLAlchemy types __table__ as any FromClause; a declarative class with a __tablename__ has a Table.
        table = cast(Table, Integration.__table__)
        statement = (
            table.update()
            .where(table.c.id == bindparam("target_id"), table.c.check_lease_holder == holder)
            .values(
                status=bindparam("new_status"),
                status_message=bindparam("new_message"),
                last_checked_at=now,
                check_lease_until=None,
                check_lease_holder=None,
            )
        )
        rows = [
            {
                "target_id": o.integration_id,
                "new_status": "connected" if o.result.success else "error",
                "new_message": o.result.message if o.result.success else (o.result.error or o.result.message),
            }
            for o in outcomes
        ]
        with self._factory.begin() as session:
            session.connection().execute(statement, rows)
            events = [_test_event(o.provider_key, o.result, o.integration_id) for o in outcomes]
            audit.record_many(session, actor, events)

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
        if not provider.available:
            return TestResult(False, f"{provider.name} is coming soon and cannot be tested yet.", error="not available")
        try:
            sealed = self._sealed(provider, configuration, stored, integration_id)
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

    def _lease_time(self) -> timedelta:
        """How long a check's lease lasts: longer than the check's deadline (core.leases.lease_time)."""
        session = self._http_session()
        try:
            return leases.lease_time(_policy_of(session))
        finally:
            session.close()

    def _claim_one(self, integration_id: int, holder: str) -> bool:
        with self._factory.begin() as session:
            return bool(leases.claim(session, [integration_id], holder, self._lease_time()))

    def _rate_limited(self, actor: Actor, provider: Provider, config: dict, integration_id: int | None):
        """A refusal (as a failed TestResult) when the person or the target host is over its test limit."""
        if self._limiter is None:
            return None
        buckets = [(Bucket("test_per_user", str(actor.id)), "connection tests")]
        if host := _target_host(provider, config):
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
            plain = self._plain(provider, sealed, integration_id)
        except DecryptionError as exc:
            return TestResult(False, "A stored secret could not be decrypted. Re-enter it and save.", error=str(exc))
        if refused := _unsendable(provider, plain):  # stored before these characters were refused
            return refused
        secrets = _secret_values(provider, plain)
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


def stale_condition(cutoff: datetime):
    """SQL for "stale": active, and not checked since cutoff (counted from creation when never checked,
    so a new integration is not stale at once). The one definition, for every page and count."""
    return and_(
        Integration.is_active.is_(True),
        func.coalesce(Integration.last_checked_at, Integration.created_at) < cutoff,
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


def _kind_phrase(category: str) -> str:
    """'A Database integration', 'An API integration': short categories are acronyms."""
    word = category if len(category) <= 3 else category.replace("_", " ").title()
    return f"{'An' if word[0] in 'AEIOU' else 'A'} {word} integration"


def _target_host(provider: Provider, config: dict) -> str | None:
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


def _leaf_names(config: dict, prefix: str = "") -> set[str]:
    names = set()
    for key, value in config.items():
        name = f"{prefix}{key}"
        names |= _leaf_names(value, name + ".") if isinstance(value, dict) else {name}
    return names


def _changed_fields(before: dict, after: dict) -> list[str]:
    names = _leaf_names(before) | _leaf_names(after)
    return sorted(n for n in names if fields.get_path(before, n) != fields.get_path(after, n))


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


def _secret_values(provider: Provider, plain: dict) -> list[str]:
    values = []
    for spec in provider.fields:
        if not spec.sensitive:
            continue
        value = fields.get_path(plain, spec.name)
        if not isinstance(value, str):
            continue
        values.append(value)
        if spec.type == "json":
            with contextlib.suppress(ValueError):
                values += [v for v in _json_strings(json.loads(value))]
    return values


def _json_strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _json_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _json_strings(v)]
    return [node] if isinstance(node, str) else []


__all__ = [
    "CheckOutcome",
    "CheckScope",
    "CheckTarget",
    "IntegrationService",
    "IntegrationView",
    "ListPage",
    "ListQuery",
    "Stats",
]
