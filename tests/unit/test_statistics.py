"""StatisticsService: counts by tier/provider/type/status with filters, stale counting, the bounded error
list, the daily check trend from audit events, administrators only, and formula-safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, insert

from core import csvsafe
from core.errors import PermissionDeniedError, ValidationError
from core.integrations import statistics
from core.integrations.statistics import Filters, StatisticsService
from core.models import Integration
from providers import CATALOG
from tests.factories import add_check, add_integration

NOW = datetime(2026, 3, 10, 15, 30)  # naive UTC, like every stored timestamp


@pytest.fixture
def service(ctx):
    return StatisticsService(ctx.factory, CATALOG, stale_after_hours=24, clock=lambda: NOW)


def add(ctx, owner, name="i", provider="CHATWOOT", kind="CRM", created=NOW - timedelta(days=3), **fields):
    return add_integration(ctx, owner, name, provider, kind, created=created, **fields)


@pytest.fixture
def tenants(ctx, admin, member, other_member):
    """alice (FREE): 2 Chatwoot connected (one stale), 1 HubSpot in error; bob (STARTER): 1 HubSpot in error
    (inactive), 1 Postgres unknown never checked (stale). root (ENTERPRISE): none."""
    recent, old = NOW - timedelta(hours=1), NOW - timedelta(hours=30)
    ids = {
        "a1": add(ctx, member, "A1", status="connected", checked=recent),
        "a2": add(ctx, member, "A2", status="connected", checked=old),
        "a3": add(ctx, member, "A3", "HUBSPOT", status="error", checked=recent, message="Token revoked"),
        "b1": add(
            ctx, other_member, "B1", "HUBSPOT", status="error", active=False, checked=old, message="=HYPERLINK()"
        ),
        "b2": add(ctx, other_member, "B2", "POSTGRESQL", "DATABASE"),
    }
    return ids


def as_tuples(counts):
    return {(r.tier, r.provider, r.type, r.status): (r.total, r.active, r.stale) for r in counts.rows}


def test_counts_group_by_tier_provider_type_status_with_active_and_stale(service, admin, tenants):
    counts = service.counts(admin)
    assert as_tuples(counts) == {
        ("FREE", "CHATWOOT", "CRM", "connected"): (2, 2, 1),
        ("FREE", "HUBSPOT", "CRM", "error"): (1, 1, 0),
        ("STARTER", "HUBSPOT", "CRM", "error"): (1, 0, 0),  # inactive: never stale
        ("STARTER", "POSTGRESQL", "DATABASE", "unknown"): (1, 1, 1),  # never checked: stale
    }
    assert (counts.total, counts.active, counts.in_error, counts.stale) == (5, 4, 2, 2)
    assert [r.tier for r in counts.rows] == ["FREE", "FREE", "STARTER", "STARTER"]  # tier order
    names = {r.provider: r.provider_name for r in counts.rows}
    assert names["CHATWOOT"] == CATALOG.get("CHATWOOT").name and names["HUBSPOT"] == "HubSpot"


def test_stale_follows_the_configured_age(ctx, admin, tenants):
    lenient = StatisticsService(ctx.factory, CATALOG, stale_after_hours=48, clock=lambda: NOW)
    assert lenient.counts(admin).stale == 1  # only the never-checked one
    strict = StatisticsService(ctx.factory, CATALOG, stale_after_hours=0.5, clock=lambda: NOW)
    assert strict.counts(admin).stale == 4  # every active one


def test_filters_narrow_the_counts(service, admin, tenants):
    assert service.counts(admin, Filters(tiers=("STARTER",))).total == 2
    assert service.counts(admin, Filters(tiers=("starter", "FREE"))).total == 5  # names are parsed
    by_provider = service.counts(admin, Filters(providers=("HUBSPOT",)))
    assert {r.provider for r in by_provider.rows} == {"HUBSPOT"} and by_provider.total == 2
    assert service.counts(admin, Filters(statuses=("error",))).in_error == 2
    both = service.counts(admin, Filters(tiers=("FREE",), providers=("HUBSPOT",), statuses=("error",)))
    assert as_tuples(both) == {("FREE", "HUBSPOT", "CRM", "error"): (1, 1, 0)}
    assert service.counts(admin, Filters(tiers=("ENTERPRISE",))).rows == ()


def test_filters_are_normalised_and_validated():
    assert Filters(tiers=("starter", "FREE", "FREE")) == Filters(tiers=("FREE", "STARTER"))
    assert Filters(statuses=("unknown", "error")).statuses == ("error", "unknown")
    assert Filters().is_empty and not Filters(providers=("X",)).is_empty
    with pytest.raises(ValidationError, match="choose from connected, error, unknown"):
        Filters(statuses=("stale",))
    with pytest.raises(ValidationError, match="Unknown tier"):
        Filters(tiers=("GOLD",))


def test_errors_newest_first_with_owner_tier_and_message(service, admin, tenants):
    found = service.errors(admin)
    assert found.total == 2 and found.shown == 2
    first, second = found.rows
    assert (first.name, first.owner, first.tier, first.provider_name, first.message) == (
        "A3",
        "alice",
        "FREE",
        "HubSpot",
        "Token revoked",
    )
    assert second.name == "B1" and not second.is_active
    assert first.last_checked_at > second.last_checked_at
    assert service.errors(admin, Filters(tiers=("STARTER",))).total == 1
    assert service.errors(admin, Filters(statuses=("connected",))).total == 0


def test_error_list_is_bounded_but_counts_everything(ctx, service, admin, member):
    with ctx.factory.begin() as session:
        session.execute(
            insert(Integration),
            [
                dict(
                    owner_id=member.id,
                    name=f"E{n}",
                    type="CRM",
                    provider="HUBSPOT",
                    configuration={},
                    status="error",
                    status_message="x" * 2000 if n == 0 else "down",
                    last_checked_at=NOW - timedelta(minutes=n),
                )
                for n in range(statistics.MAX_ERROR_ROWS + 25)
            ],
        )
    found = service.errors(admin)
    assert found.total == statistics.MAX_ERROR_ROWS + 25
    assert found.shown == statistics.MAX_ERROR_ROWS
    assert [r.name for r in found.rows[:3]] == ["E0", "E1", "E2"]
    assert len(found.rows[0].message) <= statistics.MAX_MESSAGE_LENGTH + 1
    assert service.errors(admin, limit=5).shown == 5
    assert service.errors(admin, limit=10_000).shown == statistics.MAX_ERROR_ROWS


def test_trend_groups_by_day_and_fills_gaps(ctx, service, admin, tenants):
    day = lambda n, h=9: datetime.combine(NOW.date() - timedelta(days=n), datetime.min.time()) + timedelta(hours=h)  # noqa: E731
    add_check(ctx, tenants["a1"], day(0))
    add_check(ctx, tenants["a1"], day(0, 23) - timedelta(hours=9))
    add_check(ctx, tenants["a3"], day(0, 1), "failure")
    add_check(ctx, tenants["a3"], day(2), "failure")
    add_check(ctx, tenants["b1"], day(2, 23), "success")
    add_check(ctx, tenants["a1"], day(3), "denied")  # refused by a rate limit: did not run
    add_check(ctx, tenants["a1"], day(3), "success", action="integration.update")  # not a check
    add_check(ctx, None, day(1), "failure")  # an unsaved form's test
    add_check(ctx, tenants["a1"], day(7), "failure")  # before the period
    trend = service.trend(admin, days=7)
    assert (trend.since, trend.until) == (NOW.date() - timedelta(days=6), NOW.date())
    assert len(trend.points) == 7 and [p.day for p in trend.points] == sorted(p.day for p in trend.points)
    per_day = {(NOW.date() - p.day).days: (p.checks, p.passed, p.errors) for p in trend.points}
    assert per_day == {0: (3, 2, 1), 1: (0, 0, 0), 2: (2, 1, 1), 3: (0, 0, 0), 4: (0, 0, 0), 5: (0, 0, 0), 6: (0, 0, 0)}
    assert (trend.checks, trend.errors) == (5, 2) and trend.includes_deleted


def test_trend_filters_through_the_integration_and_its_owner(ctx, service, admin, tenants):
    today = datetime.combine(NOW.date(), datetime.min.time()) + timedelta(hours=8)
    add_check(ctx, tenants["a1"], today)  # FREE, Chatwoot
    add_check(ctx, tenants["b1"], today, "failure")  # STARTER, HubSpot
    add_check(ctx, 999_999, today, "failure")  # an integration deleted since
    assert service.trend(admin).errors == 2
    starter = service.trend(admin, Filters(tiers=("STARTER",)))
    assert (starter.checks, starter.errors, starter.includes_deleted) == (1, 1, True)
    chatwoot = service.trend(admin, Filters(providers=("CHATWOOT",)))
    assert (chatwoot.checks, chatwoot.errors) == (1, 0)
    with ctx.factory.begin() as session:  # deleted after its check: still counted under its provider and tier
        session.execute(delete(Integration).where(Integration.id == tenants["a1"]))
    assert service.trend(admin, Filters(tiers=("FREE",), providers=("CHATWOOT",))).checks == 1
    assert service.trend(admin, Filters(statuses=("connected",))).checks == 3  # status is not history
    with pytest.raises(ValidationError):
        service.trend(admin, days=0)


def test_members_are_refused_everything(service, member, tenants):
    for call in (
        lambda: service.counts(member),
        lambda: service.errors(member),
        lambda: service.trend(member),
        lambda: service.providers(member),
    ):
        with pytest.raises(PermissionDeniedError, match="Only an administrator"):
            call()


def test_wired_into_the_app_context_with_the_settings(ctx, admin):
    assert isinstance(ctx.statistics, StatisticsService)
    assert ctx.statistics._stale_after_hours == ctx.settings.stale_after_hours
    assert ("CHATWOOT", CATALOG.get("CHATWOOT").name) in ctx.statistics.providers(admin)


def read_csv(text):
    return list(csv.reader(io.StringIO(text)))


def test_csv_neutralises_formulas_but_not_numbers():
    assert csvsafe.safe_cell("=1+1") == "'=1+1"
    for dangerous in ("+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csvsafe.safe_cell(dangerous).startswith("'")
    assert csvsafe.safe_cell("plain") == "plain" and csvsafe.safe_cell(-3) == -3 and csvsafe.safe_cell(None) == ""
    assert read_csv(csvsafe.to_csv(["a", "b"], [["=cmd|' /C calc'!A0", 5]])) == [
        ["a", "b"],
        ["'=cmd|' /C calc'!A0", "5"],
    ]


def test_csv_of_what_is_shown(service, admin, tenants):
    errors = read_csv(statistics.errors_csv(service.errors(admin)))
    assert errors[0][:3] == ["Integration ID", "Name", "Owner"]
    assert [row[1] for row in errors[1:]] == ["A3", "B1"]
    assert errors[2][6] == "'=HYPERLINK()"  # the remote server's message cannot become a formula
    counts = read_csv(statistics.counts_csv(service.counts(admin, Filters(tiers=("FREE",)))))
    assert counts[0] == ["Tier", "Provider", "Provider key", "Type", "Status", "Integrations", "Active", "Stale"]
    assert {(r[2], r[4], r[5]) for r in counts[1:]} == {("CHATWOOT", "connected", "2"), ("HUBSPOT", "error", "1")}
    trend = read_csv(statistics.trend_csv(service.trend(admin, days=3)))
    assert len(trend) == 4 and trend[-1][0] == NOW.date().isoformat()


def test_counts_roll_up_by_each_dimension_in_display_order(service, admin, tenants):
    counts = service.counts(admin)
    by_tier = counts.by("tier")
    assert [(b.key, b.label, b.total, b.active, b.stale) for b in by_tier] == [
        ("FREE", "Free", 3, 3, 1),
        ("STARTER", "Starter", 2, 1, 1),
    ]
    assert (by_tier[0].connected, by_tier[0].error, by_tier[0].unknown) == (2, 1, 0)
    by_provider = counts.by("provider")
    assert [(b.label, b.total) for b in by_provider] == [("Chatwoot", 2), ("HubSpot", 2), ("PostgreSQL", 1)]
    assert [(b.key, b.total, b.error) for b in by_provider if b.key == "HUBSPOT"] == [("HUBSPOT", 2, 2)]
    assert [(b.key, b.total) for b in counts.by("type")] == [("CRM", 4), ("DATABASE", 1)]
    assert [(b.label, b.total) for b in counts.by("status")] == [("Connected", 2), ("Error", 2), ("Not tested", 1)]
    assert sum(b.total for b in counts.by("provider")) == counts.total
    with pytest.raises(ValueError):
        counts.by("owner")


def test_a_new_integration_never_checked_is_not_stale_yet(ctx, service, admin, member):
    add(ctx, member, "Just added", created=NOW - timedelta(hours=2))
    assert service.counts(admin).stale == 0
