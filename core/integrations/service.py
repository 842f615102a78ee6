"""IntegrationService: the only path to integrations, for pages, CLI and tests alike.

Ownership, tier limits, listing and paging, optimistic locking and auditing live here; it seals and opens
configurations with core.integrations.configuration and tests with core.integrations.checks.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import requests
from sqlalchemy import ColumnElement, CursorResult, and_, case, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from core import audit, fields, tiers
from core.audit import Actor
from core.catalog import Catalog, Provider
from core.crypto import DecryptionError, FieldCipher
from core.errors import (
    ConflictError,
    DatabaseBusyError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TierLimitError,
    ValidationError,
    conflict,
)
from core.integrations import detail as detail_page
from core.integrations import ledgers
from core.integrations.bulk import IntegrationBulk
from core.integrations.checks import IntegrationChecks
from core.integrations.configuration import Configurations, audited_changes, changed_fields, masked, secretless
from core.integrations.failing import FailingRow, newest_checked_first
from core.integrations.health import Health, HealthPolicy
from core.integrations.history import HistoryService
from core.models import AuditEvent, HealthChange, Integration, User, utcnow
from core.ratelimit import RateLimiter

MAX_NAME_LENGTH = 200
DEFAULT_STALE_AFTER = timedelta(hours=24)
MAX_PAGE_SIZE = 200
CHOICES_SHOWN = 500  # the most integrations a form's choice box offers (owned_by)
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
    health: str = "unknown"  # core.integrations.health.Health
    # {sensitive field: its last four characters}, for an edit form to say which secret is stored; only from
    # for_edit(), and only for secrets of at least core.fields.HINT_MIN_LENGTH characters. Never exported.
    secret_hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListQuery:
    """A page of the integrations list: a search over name (and owner, for admins, or #id), filters."""

    search: str = ""
    status: str | None = None  # one of LIST_STATUSES
    provider: str | None = None
    health: str | None = None  # one of core.integrations.health.Health
    offset: int = 0
    limit: int = 50


LIST_STATUSES = ("connected", "error", "unknown", "stale", "active", "inactive")  # what a list filters by


@dataclass(frozen=True)
class ListPage:
    views: list[IntegrationView]
    total: int  # every match, not just this page
    offset: int
    limit: int


@dataclass(frozen=True)
class Stats:
    total: int
    active: int
    inactive: int
    error: int
    stale: int = 0


class IntegrationService(IntegrationChecks, IntegrationBulk):
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        catalog: Catalog,
        http_session: Callable[[], requests.Session],
        limiter: RateLimiter | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        history: HistoryService | None = None,
        health_policy: HealthPolicy | None = None,
        interval_override: float | None = None,
    ):
        self._factory = factory
        self.history = history or HistoryService(factory)
        self.health_policy = health_policy or HealthPolicy()
        self.interval_override = interval_override
        self.stale_after = stale_after
        self._cipher = cipher
        self._catalog = catalog
        self._http_session = http_session
        self._limiter = limiter
        self._configurations = Configurations(cipher)

    # ----- reading -------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The providers this service knows (read-only; for services that work per provider)."""
        return self._catalog

    def _visible(self, actor: Actor):
        query = select(Integration, User.username).join(User, Integration.owner_id == User.id)
        return query if actor.is_admin else query.where(Integration.owner_id == actor.id)

    def _view(self, row: Integration, owner: str, opened: bool = False) -> IntegrationView:
        """The row as callers see it; opened (for_edit): in the provider's current shape,
        with its secrets' hints."""
        provider = self._catalog.get(row.provider) if row.provider in self._catalog else None
        configuration, hints = masked(provider, row.configuration or {}), {}
        if opened and provider is not None:
            configuration, hints = self._configurations.shown(provider, row.configuration or {}, row.id)
        return IntegrationView(
            id=row.id,
            name=row.name,
            type=row.type,
            provider=row.provider,
            provider_name=provider.name if provider else row.provider,
            configuration=configuration,
            is_active=row.is_active,
            status=row.status,
            status_message=row.status_message,
            last_checked_at=row.last_checked_at,
            version=row.version,
            owner=owner,
            created_at=row.created_at,
            updated_at=row.updated_at,
            stale=row.is_active and (row.last_checked_at or row.created_at) < utcnow() - self.stale_after,
            health=row.health or "unknown",
            secret_hints=hints,
        )

    def list_integrations(self, actor: Actor) -> list[IntegrationView]:
        return self.matching(actor, ListQuery())

    def matching(self, actor: Actor, query: ListQuery) -> list[IntegrationView]:
        """Every integration the actor can see that matches the query's search and filters (no paging)."""
        listing = self._visible(actor).where(*self._list_conditions(actor, query))
        with self._factory() as session:
            rows = session.execute(listing.order_by(Integration.name_key, Integration.id))
            return [self._view(row, owner) for row, owner in rows]

    def owned_by(
        self,
        actor: Actor,
        owner: str,
        providers: Collection[str],
        *,
        leave_out: int | None = None,
        active_only: bool = False,
        limit: int = CHOICES_SHOWN,
    ) -> list[IntegrationView]:
        """One owner's integrations of these providers that the actor can see, by name, at most `limit`:
        the choices of a form (a sync's partner, a template's CRM), read in SQL at any table size."""
        conditions = [User.username == owner, Integration.provider.in_(list(providers))]
        if leave_out is not None:
            conditions.append(Integration.id != leave_out)
        if active_only:
            conditions.append(Integration.is_active.is_(True))
        listing = self._visible(actor).where(*conditions).order_by(Integration.name_key, Integration.id)
        with self._factory() as session:
            rows = session.execute(listing.limit(max(1, min(limit, CHOICES_SHOWN))))
            return [self._view(row, name) for row, name in rows]

    def page(self, actor: Actor, query: ListQuery) -> ListPage:
        """One page of the integrations the actor can see, filtered and counted in SQL (any table size)."""
        conditions = self._list_conditions(actor, query)
        listing = self._visible(actor).where(*conditions).order_by(Integration.name_key, Integration.id)
        counting = select(func.count(Integration.id)).where(*conditions)
        if not actor.is_admin:
            counting = counting.where(Integration.owner_id == actor.id)
        limit = max(1, min(query.limit, MAX_PAGE_SIZE))
        with self._factory() as session:
            total = self._ledger_total(session, query) if actor.is_admin else None
            if total is None:
                total = int(session.scalar(counting) or 0)
            offset = min(max(0, query.offset), max(0, (total - 1) // limit * limit))
            rows = session.execute(listing.offset(offset).limit(limit))
            return ListPage([self._view(row, owner) for row, owner in rows], total, offset, limit)

    @staticmethod
    def _ledger_total(session, query: ListQuery) -> int | None:
        """Every tenant's count for a list without a search: from the statistics ledgers, exact and of flat
        cost (a count over a million rows takes 50 ms). None when the ledgers cannot say: a search, or stale
        (which depends on the time)."""
        if query.search.strip() or query.status == "stale":
            return None
        activity = {"active": True, "inactive": False}.get(query.status or "")
        status = query.status if query.status and activity is None else None
        return ledgers.total(
            session,
            providers=[query.provider] if query.provider else (),
            statuses=[status] if status else (),
            health=query.health or None,
            active=activity,
        )

    def _list_conditions(self, actor: Actor, query: ListQuery) -> list:
        conditions = []
        if text := query.search.strip()[:100]:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matches: list[ColumnElement[bool]] = [Integration.name.ilike(pattern, escape="\\")]
            if actor.is_admin:  # owners as a subquery (a few thousand users): the count then reads no join
                owners = select(User.id).where(User.username.ilike(pattern, escape="\\"))
                matches.append(Integration.owner_id.in_(owners))
            if text.lstrip("#").isdigit():
                matches.append(Integration.id == int(text.lstrip("#")))
            conditions.append(or_(*matches))
        if query.provider:
            conditions.append(Integration.provider == query.provider)
        if query.status == "stale":
            conditions.append(self.stale_condition())
        elif query.status in ("active", "inactive"):  # the Overview's Active and Inactive tiles
            conditions.append(Integration.is_active.is_(query.status == "active"))
        elif query.status:
            conditions.append(Integration.status == query.status)
        if query.health:
            conditions.append(Integration.health == query.health)
        return conditions

    def names(self, actor: Actor, ids: list[int] | None = None, limit: int = 1000) -> dict[int, str]:
        """Names of the given integrations the actor can see, or (ids None) the first `limit` by name."""
        query = select(Integration.id, Integration.name).order_by(Integration.name_key, Integration.id)
        if not actor.is_admin:
            query = query.where(Integration.owner_id == actor.id)
        query = query.where(Integration.id.in_(ids)) if ids is not None else query.limit(limit)
        with self._factory() as session:
            return dict(session.execute(query).all())

    def get(self, actor: Actor, integration_id: int) -> IntegrationView:
        with self._factory() as session:
            row, owner = self._load(session, actor, integration_id)
            return self._view(row, owner)

    def for_edit(self, actor: Actor, integration_id: int) -> IntegrationView:
        """get() for an edit form: the configuration in the provider's current shape (a stored older one read as
        today's fields), still masked, with each long enough secret's last-four hint (secret_hints)."""
        with self._factory() as session:
            row, owner = self._load(session, actor, integration_id)
            return self._view(row, owner, opened=True)

    def stats(self, actor: Actor) -> Stats:
        """Total, active, inactive, in-error and stale counts: an administrator's from the statistics ledgers
        (every tenant: flat cost whatever their number), a member's from one aggregate over their own."""
        if actor.is_admin:
            with self._factory() as session:
                rows = ledgers.counts(session, by=("status", "is_active"))
                fresh = ledgers.fresh_total(session, utcnow() - self.stale_after)
            total = sum(n for _status, _active, n in rows)
            active = sum(n for _status, is_active, n in rows if is_active)
            error = sum(n for status, _active, n in rows if status == "error")
            stale = active - fresh
            return Stats(total=total, active=active, inactive=total - active, error=error, stale=stale)
        query = select(
            func.count(Integration.id),
            func.coalesce(func.sum(case((Integration.is_active.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((Integration.status == "error", 1), else_=0)), 0),
            func.coalesce(func.sum(case((self.stale_condition(), 1), else_=0)), 0),
        )
        query = query.where(Integration.owner_id == actor.id)
        with self._factory() as session:
            total, active, error, stale = session.execute(query).one()
        return Stats(
            total=int(total), active=int(active), inactive=int(total) - int(active), error=int(error), stale=int(stale)
        )

    def failing(self, actor: Actor, limit: int = 100) -> tuple[list[FailingRow], int]:
        """The actor's integrations whose last check failed, most recently checked first: at most `limit`
        rows, and how many there are (the Overview's failing list, grouped by core.integrations.failing)."""
        conditions = [Integration.status == "error"]
        if not actor.is_admin:
            conditions.append(Integration.owner_id == actor.id)
        query = select(Integration, User.username).join(User, Integration.owner_id == User.id).where(*conditions)
        with self._factory() as session:
            if actor.is_admin:  # every tenant's: from the ledgers, of flat cost
                total = self._ledger_total(session, ListQuery(status="error")) or 0
            else:
                total = int(session.scalar(select(func.count(Integration.id)).where(*conditions)) or 0)
            rows = [
                FailingRow(
                    row.id,
                    row.name,
                    self._provider_name(row.provider),
                    owner,
                    (row.status_message or "")[:500],
                    row.last_checked_at,
                    row.last_check_class,
                )
                for row, owner in newest_checked_first(session, query, max(1, min(limit, MAX_PAGE_SIZE)))
            ]
        return rows, total

    def stale_condition(self):
        return stale_condition(utcnow() - self.stale_after)

    def usage(self, actor: Actor) -> tuple[int, int]:
        """(integrations the actor owns, what their tier allows; tiers.UNLIMITED for no limit)."""
        with self._factory() as session:
            used = session.scalar(select(func.count(Integration.id)).where(Integration.owner_id == actor.id)) or 0
        return int(used), tiers.limit("integrations", tiers.Tier.parse(actor.tier))

    def counts_by_provider_and_status(self, actor: Actor) -> list[tuple[str, str, int]]:
        """(provider name, status, integrations), by provider key: an administrator's from the ledgers."""
        if actor.is_admin:
            with self._factory() as session:  # one row per (provider, status) with any, from the ledgers
                found = ledgers.counts(session, by=("provider", "status"))
            return [(self._provider_name(p), status, n) for p, status, n in sorted(found)]
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
            return self._configurations.plain(self._catalog.get(provider_key), config, integration_id)
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
            .order_by(Integration.name_key, Integration.id)
        )
        if active_only:
            query = query.where(Integration.is_active.is_(True))
        with self._factory() as session:
            return [self._view(row, owner) for row, owner in session.execute(query)]

    # ----- writing -------------------------------------------------------------------------

    def create(self, actor: Actor, name: str, provider_key: str, configuration: dict) -> IntegrationView:
        provider = self._provider_for_create(actor, provider_key)
        name = self._check_name(name)
        clean = self._configurations.checked(provider, configuration, None)  # every check before any write
        with self._transaction() as session:
            owner = self._owner_within_limit(session, actor, actor.id, "integration.create")
            view = self._insert(session, actor, owner, name, provider, clean)
            audit.record(
                session, actor, "integration.create", "success", view.id, {"name": name, "provider": provider.key}
            )
        return view

    def _owner_within_limit(self, session: Session, actor: Actor, owner_id: int, action: str) -> User:
        """The owner, locked, when their tier allows one more integration; TierLimitError otherwise, audited
        as `action` denied (in its own transaction: this one rolls back)."""
        owner = session.execute(select(User).where(User.id == owner_id).with_for_update()).scalar_one_or_none()
        if owner is None:
            raise NotFoundError(f"User {owner_id} was not found.")
        used = int(session.scalar(select(func.count(Integration.id)).where(Integration.owner_id == owner_id)) or 0)
        try:
            someone_else = None if owner_id == actor.id else owner.username
            tiers.check_limit("integrations", tiers.Tier.parse(owner.tier), used, "integrations", person=someone_else)
        except TierLimitError:
            audit.record_now(self._factory, actor, action, "denied", details={"reason": "tier limit"})
            raise
        return owner

    def _insert(
        self, session: Session, actor: Actor, owner: User, name: str, provider: Provider, clean: dict
    ) -> IntegrationView:
        """A new row of a checked configuration (plain secrets), its secrets sealed for its new id."""
        without = secretless(provider, clean)
        row = Integration(
            owner_id=owner.id,
            name=name,
            type=provider.category,
            provider=provider.key,
            configuration=without,
            is_active=True,
            status="unknown",
        )
        session.add(row)
        session.flush()
        # The secrets are bound to the row's id, known only now; written in the same transaction by
        # a plain UPDATE so that creating stays version 1.
        sealed = self._configurations.seal(provider, clean, None, row.id)
        if sealed != without:
            session.execute(
                update(Integration)
                .where(Integration.id == row.id)
                .values(configuration=sealed, updated_at=row.updated_at)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(row, "configuration", sealed)
        return self._view(row, owner.username)

    def duplicate(self, actor: Actor, integration_id: int) -> IntegrationView:
        """A copy named "<name> (copy)" with the same settings, for the same owner (within their tier's limit):
        each secret decrypted and encrypted again for the copy's own id and field. Active, not tested yet."""
        with self._factory() as session:
            row, _ = self._load(session, actor, integration_id)
            name, owner_id, stored = row.name, row.owner_id, copy.deepcopy(row.configuration or {})
            provider = self._catalog.get(row.provider)
            owner_tier = tiers.Tier.parse(session.scalar(select(User.tier).where(User.id == owner_id)) or "FREE")
        if not provider.available or not tiers.allows(owner_tier, provider.min_tier):
            raise TierLimitError(
                f"{provider.name} cannot be added on the {owner_tier.label} tier, so it cannot be copied."
            )
        try:
            plain = self._configurations.plain(provider, stored, integration_id)
        except DecryptionError as exc:
            raise ValidationError(
                {
                    "integration": f"A stored secret of {name} could not be decrypted. Edit it, enter the secret "
                    "again and save, then duplicate it."
                }
            ) from exc
        if provider.upgrade is not None:
            plain = provider.upgrade(plain)
        copy_name = self._check_name(_copy_name(name))
        with self._transaction() as session:
            owner = self._owner_within_limit(session, actor, owner_id, "integration.duplicate")
            view = self._insert(session, actor, owner, copy_name, provider, plain)
            details = {"name": copy_name, "provider": provider.key, "copied_from": integration_id}
            audit.record(session, actor, "integration.duplicate", "success", view.id, details)
        return view

    def transfer(self, actor: Actor, integration_id: int, new_owner: str) -> IntegrationView:
        """Give an integration to another person (administrators only), within the new owner's tier limit and
        the provider's tier. Secrets stay as they are (bound to the integration, not its owner). Audited."""
        if not actor.is_admin:
            raise PermissionDeniedError("Only an administrator can give an integration to someone else.")
        with self._transaction(integration_id) as session:
            target = session.execute(select(User).where(User.username == new_owner)).scalar_one_or_none()
            if target is None:
                raise NotFoundError(f"No user called {new_owner}. Choose one of the listed people.")
            row, old_owner = self._load(session, actor, integration_id)
            if row.owner_id == target.id:
                return self._view(row, old_owner)
            provider = self._catalog.get(row.provider) if row.provider in self._catalog else None
            target_tier = tiers.Tier.parse(target.tier)
            if provider is not None and not tiers.allows(target_tier, provider.min_tier):
                raise TierLimitError(
                    f"{provider.name} needs the {provider.min_tier.label} tier; {target.username}'s is "
                    f"{target_tier.label}."
                )
            self._owner_within_limit(session, actor, target.id, "integration.transfer")
            row.owner_id = target.id
            details = {"name": row.name, "from": old_owner, "to": target.username}
            audit.record(session, actor, "integration.transfer", "success", row.id, details)
            session.flush()
            return self._view(row, target.username)

    def check_new(self, actor: Actor, provider_key: str, name: str) -> str:
        """Whether create would accept this provider and name from actor (raises as create would), before
        anything is asked of the provider: the checked name."""
        self._provider_for_create(actor, provider_key)
        return self._check_name(name)

    def replace_tokens(self, actor: Actor, integration_id: int, values: dict) -> IntegrationView:
        """Reconnect: replace only the credentials a new consent issued (values), keeping the integration's
        id, name, owner, history and every other setting. Audited as integration.reconnect, naming the
        fields that changed (never a value). Its status is unknown until the next test."""
        with self._transaction(integration_id) as session:
            row, owner = self._load(session, actor, integration_id)
            provider = self._catalog.get(row.provider)
            stored = row.configuration or {}
            sealed = self._configurations.sealed(provider, masked(provider, stored) | values, stored, row.id)
            changed = changed_fields(stored, sealed)
            row.configuration = sealed
            row.status, row.status_message = "unknown", "Reconnected; not tested since."
            audit.record(session, actor, "integration.reconnect", "success", row.id, {"fields": changed})
            session.flush()
            return self._view(row, owner)

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
            changed, changes = [], []  # changes: old -> new per non-secret field, a secret only as changed
            if name is not None and self._check_name(name) != row.name:
                changes.append({"field": "name", "old": row.name, "new": self._check_name(name)})
                row.name = self._check_name(name)
                changed.append("name")
            if configuration is not None:
                sealed = self._configurations.sealed(provider, configuration, row.configuration, row.id)
                changed += changed_fields(row.configuration or {}, sealed)
                changes += audited_changes(provider, row.configuration or {}, sealed)
                if sealed != row.configuration:
                    row.configuration = sealed
                    row.status, row.status_message = "unknown", "Configuration changed since the last test."
            if changed:
                details = {"fields": changed, "changes": changes}
                audit.record(session, actor, "integration.update", "success", row.id, details)
            session.flush()
            return self._view(row, owner)

    def set_active(self, actor: Actor, integration_id: int, active: bool) -> IntegrationView:
        """Activating is resuming, deactivating is pausing."""
        return self.resume(actor, integration_id) if active else self.pause(actor, integration_id)

    def pause(self, actor: Actor, integration_id: int) -> IntegrationView:
        """Stop scheduled checks: inactive, health "paused". A manual test still works."""
        return self._set_paused(actor, integration_id, True)

    def resume(self, actor: Actor, integration_id: int) -> IntegrationView:
        """Scheduled checks again from now: active, health "unknown" until its next check, streaks reset."""
        return self._set_paused(actor, integration_id, False)

    def _set_paused(self, actor: Actor, integration_id: int, paused: bool) -> IntegrationView:
        """Like activating: not an edit (the version stays, an open edit dialog still saves). One conditional
        UPDATE, so of two pauses at once one changes the row and is audited, the other finds it paused."""
        now = utcnow()
        if paused:
            values: dict = {"is_active": False, "health": Health.PAUSED.value}
            pending = or_(Integration.is_active.is_(True), Integration.health != Health.PAUSED.value)
        else:
            values = {"is_active": True, "health": Health.UNKNOWN.value, "failures_in_row": 0, "successes_in_row": 0}
            values |= {"failing_since": None, "next_check_at": now, "planned_until": None}
            pending = or_(Integration.is_active.is_(False), Integration.health == Health.PAUSED.value)
        with self._transaction() as session:
            row, _ = self._load(session, actor, integration_id)
            old = session.scalar(select(Integration.health).where(Integration.id == integration_id).with_for_update())
            result = cast(  # an UPDATE's result is a CursorResult (with rowcount)
                CursorResult,
                session.execute(
                    update(Integration)
                    .where(Integration.id == integration_id, pending)
                    .values(**values, health_changed_at=now)
                    .execution_options(synchronize_session=False)
                ),
            )
            changed = result.rowcount
            if changed:
                new, verb = values["health"], "Paused" if paused else "Resumed"
                if old != new:  # the outbox of health changes (core.models.HealthChange)
                    session.add(
                        HealthChange(
                            integration_id=integration_id,
                            at=now,
                            old=old or "unknown",
                            new=new,
                            message=f"{verb} by {actor.username}.",
                        )
                    )
                action = "integration.pause" if paused else "integration.resume"
                audit.record(session, actor, action, "success", integration_id, {"name": row.name})
        return self.get(actor, integration_id)

    def health_counts(self, actor: Actor) -> dict[str, int]:
        """Integrations per health state (every state present, zeros included): a member's from the health
        index, an administrator's from the statistics ledgers."""
        query = select(Integration.health, func.count(Integration.id)).group_by(Integration.health)
        query = query.where(Integration.owner_id == actor.id)
        counts = dict.fromkeys((h.value for h in Health), 0)
        with self._factory() as session:
            # An administrator's: every tenant's, from the statistics ledgers, not the health index.
            found = ledgers.counts(session, by=("health",)) if actor.is_admin else session.execute(query).all()
            for health, count in found:
                counts[health or Health.UNKNOWN.value] = counts.get(health or Health.UNKNOWN.value, 0) + int(count)
        return counts

    def detail(self, actor: Actor, integration_id: int, now: datetime | None = None) -> detail_page.IntegrationDetail:
        """Everything the integration's page shows. Someone else's integration is "not found", as a missing one."""
        with self._factory() as session:
            row, owner = self._load(session, actor, integration_id)
            view = self._view(row, owner)
            health = {
                name: getattr(row, name)
                for name in ("health", "health_changed_at", "failures_in_row", "failing_since", "next_check_at")
            }
        wanted = audit.AuditFilter(integration_id=integration_id, limit=detail_page.ACTIVITY_ROWS)
        events = audit.search(self._factory, actor, wanted)
        return detail_page.build(view, health, self.history, events, now or utcnow())

    def check_summary(self, actor: Actor, integration_id: int, limit: int = 50) -> detail_page.CheckSummary:
        """The last `limit` checks and the uptime and latency figures, after the same ownership check."""
        with self._factory() as session:
            row, owner = self._load(session, actor, integration_id)
            view = self._view(row, owner)
        now = utcnow()
        p50, p95 = self.history.latency(integration_id, 30, now)
        return detail_page.CheckSummary(
            view,
            Health.parse(view.health),
            tuple(self.history.recent(integration_id, limit)),
            self.history.uptime(integration_id, 7, now),
            self.history.uptime(integration_id, 30, now),
            p50,
            p95,
        )

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


def stale_condition(cutoff: datetime):
    """SQL for "stale": active, and not checked since cutoff (counted from creation when never checked,
    so a new integration is not stale at once). The one definition, for every page and count."""
    return and_(
        Integration.is_active.is_(True),
        func.coalesce(Integration.last_checked_at, Integration.created_at) < cutoff,
    )


def _copy_name(name: str) -> str:
    suffix = " (copy)"
    return name[: MAX_NAME_LENGTH - len(suffix)] + suffix


def _kind_phrase(category: str) -> str:
    """'A Database integration', 'An API integration': short categories are acronyms."""
    word = category if len(category) <= 3 else category.replace("_", " ").title()
    return f"{'An' if word[0] in 'AEIOU' else 'A'} {word} integration"


__all__ = ["IntegrationService", "IntegrationView", "ListPage", "ListQuery", "Stats", "stale_condition"]
