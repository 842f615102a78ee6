"""Statistics across every tenant, for administrators: counts, integrations in error, and the check trend.

The counts and the trend are read from the ledgers the database keeps on every write
(core.integrations.ledgers): a few hundred rows whatever the number of integrations and audit events, so
the page costs the same at ten thousand integrations as at a million. Only the list of integrations in
error reads integrations, at most MAX_ERROR_ROWS of them down an index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core import csvsafe
from core.audit import Actor
from core.catalog import Catalog
from core.errors import PermissionDeniedError, ValidationError
from core.integrations import ledgers
from core.integrations.failing import newest_checked_first
from core.models import Integration, User, utcnow
from core.tiers import Tier, tier_label

STATUSES = ("connected", "error", "unknown")
STATUS_LABELS = {"connected": "Connected", "error": "Error", "unknown": "Not tested"}
TEST_ACTION = "integration.test"  # connection tests from the page and check-all's checks alike
MAX_ERROR_ROWS = 200
MAX_MESSAGE_LENGTH = 500
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class Filters:
    """Which integrations to count. An empty tuple means "all".

    tiers: the owner's tier names (FREE, STARTER, ...); providers: provider keys (CHATWOOT, ...);
    statuses: the stored connection status (connected, error, unknown). "Stale" is not a status but a
    separate count: an active integration not checked within stale_after_hours (counted from its creation
    when it was never checked; core.integrations.service.stale_condition).
    The values are normalised (tiers parsed, duplicates dropped, sorted) so that equal filters are equal.
    """

    tiers: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def __post_init__(self):
        try:
            tiers = tuple(sorted({Tier.parse(t).name for t in self.tiers}, key=lambda name: Tier[name]))
        except ValueError as exc:
            raise ValidationError({"tiers": str(exc)}) from exc
        unknown = sorted(set(self.statuses) - set(STATUSES))
        if unknown:
            raise ValidationError({"statuses": f"Unknown status {unknown[0]!r}; choose from {', '.join(STATUSES)}."})
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "providers", tuple(sorted({str(p) for p in self.providers})))
        object.__setattr__(self, "statuses", tuple(s for s in STATUSES if s in self.statuses))

    @property
    def is_empty(self) -> bool:
        return not (self.tiers or self.providers or self.statuses)


@dataclass(frozen=True)
class CountRow:
    """How many integrations share one (owner tier, provider, type, status)."""

    tier: str
    provider: str
    provider_name: str
    type: str
    status: str
    total: int
    active: int
    stale: int


@dataclass(frozen=True)
class Breakdown:
    """The integrations sharing one tier, provider, type or status, and how they split by status."""

    key: str  # the stored value: tier name, provider key, type or status
    label: str  # what a person reads: "Pro Plus", "HubSpot", "CRM", "Not tested"
    total: int
    active: int
    stale: int
    connected: int
    error: int
    unknown: int


DIMENSIONS = ("tier", "provider", "type", "status")


@dataclass(frozen=True)
class Counts:
    rows: tuple[CountRow, ...]
    stale_after_hours: float

    def by(self, dimension: str) -> tuple[Breakdown, ...]:
        """The rows rolled up by one of DIMENSIONS (a few hundred rows at most: plain Python).

        Tiers come in tier order, providers by size (largest first), types by name, statuses as STATUSES.
        """
        if dimension not in DIMENSIONS:
            raise ValueError(f"Roll up by one of {', '.join(DIMENSIONS)}, not {dimension!r}.")
        sums: dict[str, list[int]] = {}
        labels: dict[str, str] = {}
        for row in self.rows:
            key = getattr(row, dimension)
            labels[key] = _label(dimension, row)
            total = sums.setdefault(key, [0] * 6)
            total[0] += row.total
            total[1] += row.active
            total[2] += row.stale
            if row.status in STATUSES:
                total[3 + STATUSES.index(row.status)] += row.total
        order = {
            "tier": lambda key: (_tier_rank(key), key),
            "provider": lambda key: (-sums[key][0], labels[key].lower()),
            "type": lambda key: key,
            "status": lambda key: (_status_rank(key), key),
        }[dimension]
        return tuple(Breakdown(key, labels[key], *sums[key]) for key in sorted(sums, key=order))

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def active(self) -> int:
        return sum(r.active for r in self.rows)

    @property
    def in_error(self) -> int:
        return sum(r.total for r in self.rows if r.status == "error")

    @property
    def stale(self) -> int:
        return sum(r.stale for r in self.rows)


@dataclass(frozen=True)
class ErrorRow:
    id: int
    name: str
    owner: str
    tier: str
    provider: str
    provider_name: str
    is_active: bool
    message: str
    last_checked_at: datetime | None
    check_class: str | None = None  # core.integrations.classify.CheckClass of the last check, when stored


@dataclass(frozen=True)
class ErrorList:
    """The integrations in error, most recently checked first: at most `limit` rows of `total`."""

    rows: tuple[ErrorRow, ...]
    total: int
    limit: int

    @property
    def shown(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class TrendPoint:
    day: date
    checks: int  # tests that ran: passed + errors (a test refused by a rate limit did not run)
    passed: int
    errors: int


@dataclass(frozen=True)
class Trend:
    """One point per day from `since` to `until` inclusive (UTC), days without a check as zeros."""

    points: tuple[TrendPoint, ...]
    since: date
    until: date
    # Checks of integrations deleted since count too: each is kept under the tier and provider its
    # integration had on the day (core.integrations.ledgers), so a filter still finds them.
    includes_deleted: bool

    @property
    def checks(self) -> int:
        return sum(p.checks for p in self.points)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.points)


class StatisticsService:
    def __init__(
        self,
        factory: sessionmaker,
        catalog: Catalog,
        stale_after_hours: float = 24,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._factory = factory
        self._catalog = catalog
        self._stale_after_hours = stale_after_hours
        self._clock = clock  # naive UTC, like every stored timestamp

    # ----- helpers -------------------------------------------------------------------------

    @staticmethod
    def _allow(actor: Actor) -> None:
        if not actor.is_admin:
            raise PermissionDeniedError(
                "Only an administrator can see statistics across every tenant. "
                "Ask an administrator, or see your own integrations on the Overview page."
            )

    def _provider_name(self, key: str) -> str:
        return self._catalog.get(key).name if key in self._catalog else key

    @staticmethod
    def _conditions(filters: Filters) -> list:
        """WHERE conditions on integrations (joined to their owner, for the tier)."""
        conditions = []
        if filters.tiers:
            conditions.append(User.tier.in_(filters.tiers))
        if filters.providers:
            conditions.append(Integration.provider.in_(filters.providers))
        if filters.statuses:
            conditions.append(Integration.status.in_(filters.statuses))
        return conditions

    # ----- reading -------------------------------------------------------------------------

    def providers(self, actor: Actor) -> list[tuple[str, str]]:
        """(key, display name) of every provider in the catalog, in catalog order, for the filter."""
        self._allow(actor)
        return [(p.key, p.name) for p in self._catalog]

    def counts(self, actor: Actor, filters: Filters = Filters()) -> Counts:
        """Integrations by (owner tier, provider, type, status) with active and stale counts, from the ledgers."""
        self._allow(actor)
        cutoff = self._clock() - timedelta(hours=self._stale_after_hours)
        sums: dict[ledgers.CountKey, list[int]] = {}
        with self._factory() as session:
            for tier, provider, kind, status, active, n in ledgers.counts(
                session,
                filters.tiers,
                filters.providers,
                filters.statuses,
                by=("tier", "provider", "type", "status", "is_active"),
            ):
                total = sums.setdefault(ledgers.CountKey(tier, provider, kind, status), [0, 0])
                total[0] += n
                total[1] += n if active else 0
            fresh = ledgers.fresh(session, cutoff, filters.tiers, filters.providers, filters.statuses)
        rows = [
            CountRow(k.tier, k.provider, self._provider_name(k.provider), k.type, k.status, n, a, a - fresh.get(k, 0))
            for k, (n, a) in sums.items()
            if n
        ]
        rows.sort(key=lambda r: (_tier_rank(r.tier), r.provider_name.lower(), r.type, _status_rank(r.status)))
        return Counts(tuple(rows), self._stale_after_hours)

    def errors(self, actor: Actor, filters: Filters = Filters(), limit: int = MAX_ERROR_ROWS) -> ErrorList:
        """Integrations whose last check failed, most recently checked first, at most `limit`, and how many."""
        self._allow(actor)
        limit = max(1, min(int(limit), MAX_ERROR_ROWS))
        conditions = [Integration.status == "error", *self._conditions(filters)]
        query = (
            select(
                Integration.id,
                Integration.name,
                User.username,
                User.tier,
                Integration.provider,
                Integration.is_active,
                Integration.status_message,
                Integration.last_checked_at,
                Integration.last_check_class,
            )
            .join(User, Integration.owner_id == User.id)
            .where(*conditions)
        )
        with self._factory() as session:
            found = newest_checked_first(session, query, limit)
            excluded = bool(filters.statuses) and "error" not in filters.statuses
            total = (
                0
                if excluded
                else ledgers.total(session, tiers=filters.tiers, providers=filters.providers, statuses=("error",))
            )
        rows = tuple(
            ErrorRow(
                id=i,
                name=name,
                owner=owner,
                tier=tier,
                provider=provider,
                provider_name=self._provider_name(provider),
                is_active=bool(is_active),
                message=_bounded(message),
                last_checked_at=checked,
                check_class=check_class,
            )
            for i, name, owner, tier, provider, is_active, message, checked, check_class in found
        )
        return ErrorList(rows=rows, total=int(total), limit=limit)

    def trend(self, actor: Actor, filters: Filters = Filters(), days: int = DEFAULT_DAYS) -> Trend:
        """Checks and errors per day (UTC) over the last `days` days, today included, from the audit events.

        Each "integration.test" event of a saved integration that ran is a check: outcome success passed,
        failure is an error (denied, a test refused by a rate limit, did not run). The tier and provider
        filters apply to the owner's tier and the provider at the time of the check (the ledger keeps them);
        the status filter does not (it is today's state, not history).
        """
        self._allow(actor)
        if not 1 <= int(days) <= MAX_DAYS:
            raise ValidationError({"days": f"Choose between 1 and {MAX_DAYS} days."})
        until = self._clock().date()
        since = until - timedelta(days=int(days) - 1)
        with self._factory() as session:
            found = ledgers.check_days(session, since, until, filters.tiers, filters.providers)
        points = []
        for offset in range(int(days)):
            current = since + timedelta(days=offset)
            ok, bad = found.get(current, (0, 0))
            points.append(TrendPoint(current, ok + bad, ok, bad))
        return Trend(tuple(points), since, until, includes_deleted=True)


# ----- CSV of what the page shows ------------------------------------------------------------


def counts_csv(counts: Counts) -> str:
    return csvsafe.to_csv(
        ["Tier", "Provider", "Provider key", "Type", "Status", "Integrations", "Active", "Stale"],
        ([r.tier, r.provider_name, r.provider, r.type, r.status, r.total, r.active, r.stale] for r in counts.rows),
    )


def errors_csv(errors: ErrorList) -> str:
    return csvsafe.to_csv(
        ["Integration ID", "Name", "Owner", "Tier", "Provider", "Active", "Message", "Last checked (UTC)"],
        (
            [r.id, r.name, r.owner, r.tier, r.provider_name, r.is_active, r.message, r.last_checked_at]
            for r in errors.rows
        ),
    )


def trend_csv(trend: Trend) -> str:
    return csvsafe.to_csv(
        ["Day (UTC)", "Checks", "Passed", "Errors"], ([p.day, p.checks, p.passed, p.errors] for p in trend.points)
    )


# ----- small pure helpers --------------------------------------------------------------------


def _tier_rank(name: str) -> int:
    try:
        return int(Tier.parse(name))
    except ValueError:
        return len(Tier)  # a tier this version does not know goes last


def _label(dimension: str, row: CountRow) -> str:
    if dimension == "tier":
        return tier_label(row.tier)
    if dimension == "provider":
        return row.provider_name
    if dimension == "status":
        return STATUS_LABELS.get(row.status, row.status)
    return row.type


def _status_rank(status: str) -> int:
    return STATUSES.index(status) if status in STATUSES else len(STATUSES)


def _bounded(message: str | None) -> str:
    text = (message or "").strip()
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[:MAX_MESSAGE_LENGTH] + "…"


__all__ = [
    "DEFAULT_DAYS",
    "DIMENSIONS",
    "MAX_DAYS",
    "MAX_ERROR_ROWS",
    "STATUSES",
    "STATUS_LABELS",
    "TEST_ACTION",
    "Breakdown",
    "CountRow",
    "Counts",
    "ErrorList",
    "ErrorRow",
    "Filters",
    "StatisticsService",
    "Trend",
    "TrendPoint",
    "counts_csv",
    "errors_csv",
    "tier_label",
    "trend_csv",
]
