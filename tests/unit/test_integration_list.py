"""The integrations list is searched, filtered and paged in the database, for any number of integrations."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core.integrations.service import ListQuery
from core.models import Integration
from tests.factories import add_integration

CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "cw-list-token-0123456789"}


@pytest.fixture
def listed(ctx, owner, other_member):
    names = ["Alpha", "Beta 100%", "Gamma_1", "Gamma21", "Delta", "Epsilon", "Zeta"]
    views = {n: ctx.integrations.create(owner, n, "CHATWOOT", CONFIG) for n in names}
    ctx.integrations.create(other_member, "Bob's", "CHATWOOT", CONFIG)
    return views


def names(page):
    return [v.name for v in page.views]


def test_pages_are_cut_in_order_and_counted(ctx, owner, listed):
    first = ctx.integrations.page(owner, ListQuery(limit=3))
    assert (names(first), first.total, first.offset) == (["Alpha", "Beta 100%", "Delta"], 7, 0)
    last = ctx.integrations.page(owner, ListQuery(offset=6, limit=3))
    assert names(last) == ["Zeta"]
    beyond = ctx.integrations.page(owner, ListQuery(offset=60, limit=3))  # a page that no longer exists
    assert (names(beyond), beyond.offset) == (["Zeta"], 6)
    assert ctx.integrations.page(owner, ListQuery(limit=10_000)).limit == 200  # bounded


def test_search_takes_wildcards_literally_and_finds_ids(ctx, owner, listed):
    assert names(ctx.integrations.page(owner, ListQuery(search="gamma_"))) == ["Gamma_1"]
    assert names(ctx.integrations.page(owner, ListQuery(search="100%"))) == ["Beta 100%"]
    assert names(ctx.integrations.page(owner, ListQuery(search=f"#{listed['Zeta'].id}"))) == ["Zeta"]
    assert ctx.integrations.page(owner, ListQuery(search="Bob")).total == 0  # not hers


def test_admins_search_owners_and_filter_by_status_and_provider(ctx, admin, owner, listed):
    assert names(ctx.integrations.page(admin, ListQuery(search="bob"))) == ["Bob's"]
    with ctx.factory.begin() as session:
        session.execute(update(Integration).where(Integration.id == listed["Delta"].id).values(status="error"))
    assert names(ctx.integrations.page(admin, ListQuery(status="error"))) == ["Delta"]
    assert ctx.integrations.page(admin, ListQuery(provider="HUBSPOT")).total == 0
    assert ctx.integrations.page(admin, ListQuery(provider="CHATWOOT")).total == 8


def test_matching_exports_every_match_not_just_a_page(ctx, owner, listed):
    assert [v.name for v in ctx.integrations.matching(owner, ListQuery(search="gamma", limit=1))] == [
        "Gamma21",
        "Gamma_1",
    ]


def test_names_only_of_what_the_actor_may_see(ctx, owner, other_member, listed):
    bobs = ctx.integrations.page(other_member, ListQuery()).views[0]
    assert ctx.integrations.names(owner, [listed["Alpha"].id, bobs.id]) == {listed["Alpha"].id: "Alpha"}
    assert len(ctx.integrations.names(owner, limit=2)) == 2


def test_the_overview_tiles_filters_active_and_inactive(ctx, owner, listed):
    ctx.integrations.pause(owner, listed["Zeta"].id)
    assert names(ctx.integrations.page(owner, ListQuery(status="inactive"))) == ["Zeta"]
    assert "Zeta" not in names(ctx.integrations.page(owner, ListQuery(status="active")))
    assert ctx.integrations.page(owner, ListQuery(status="active")).total == 6


def test_failing_lists_the_owners_failing_integrations_newest_check_first_with_their_cause(
    ctx, owner, other_member, listed
):
    from datetime import timedelta

    from core.integrations.failing import by_cause
    from core.models import utcnow

    now = utcnow()
    marks = {"Alpha": ("auth", 5), "Delta": ("timeout", 1), "Zeta": (None, 3)}
    with ctx.factory.begin() as session:
        for name, (check_class, minutes) in marks.items():
            session.execute(
                update(Integration)
                .where(Integration.id == listed[name].id)
                .values(status="error", last_check_class=check_class, last_checked_at=now - timedelta(minutes=minutes))
            )
    rows, total = ctx.integrations.failing(owner)
    assert ([r.name for r in rows], total) == (["Delta", "Zeta", "Alpha"], 3)
    assert rows[0].provider_name == "Chatwoot" and rows[0].check_class == "timeout"
    assert [(c.label, [r.name for r in c.rows]) for c in by_cause(rows)] == [
        ("Credentials refused", ["Alpha"]),
        ("No answer in time", ["Delta"]),
        ("Other", ["Zeta"]),
    ]
    assert ctx.integrations.failing(other_member) == ([], 0)
    limited, total = ctx.integrations.failing(owner, limit=1)
    assert (len(limited), total) == (1, 3)


def test_an_administrators_totals_from_the_ledgers_equal_a_count_of_the_rows(ctx, admin, owner, other_member):
    """Without a search, an administrator's list is counted from the statistics ledgers (flat cost); each
    filter's total must be exactly what the rows say, after a mix of creates, status changes and deletes."""
    made = [
        ctx.integrations.create(owner if n % 3 else other_member, f"Mix {n}", "CHATWOOT", CONFIG) for n in range(12)
    ]
    add_integration(ctx, owner, "Hooks", "WEBHOOK")
    statuses = ["connected", "error", "unknown"]
    healths = ["healthy", "failing", "degraded", "unknown"]
    with ctx.factory.begin() as session:
        for n, view in enumerate(made):
            values = {"status": statuses[n % 3], "health": healths[n % 4], "is_active": n % 5 != 0}
            session.execute(update(Integration).where(Integration.id == view.id).values(**values))
    ctx.integrations.delete(owner, made[1].id, ctx.integrations.get(owner, made[1].id).version)

    queries = [ListQuery()]
    queries += [ListQuery(status=s) for s in [*statuses, "active", "inactive"]]
    queries += [ListQuery(provider=p) for p in ("CHATWOOT", "WEBHOOK", "HUBSPOT")]
    queries += [ListQuery(health=h) for h in healths]
    queries += [
        ListQuery(status="error", provider="CHATWOOT", health="failing"),
        ListQuery(status="active", health="healthy"),
    ]
    for query in queries:
        counted = len(ctx.integrations.matching(admin, query))  # the rows themselves
        assert ctx.integrations.page(admin, query).total == counted, query
    assert ctx.integrations.failing(admin)[1] == len(ctx.integrations.matching(admin, ListQuery(status="error")))


def test_never_checked_failing_integrations_come_last_newest_first_within_the_limit(ctx, owner, listed):
    from datetime import timedelta

    from core.models import utcnow

    checked = {"Alpha": 5, "Delta": 1}  # minutes ago
    with ctx.factory.begin() as session:
        for name in ("Alpha", "Delta", "Gamma21", "Zeta"):
            at = utcnow() - timedelta(minutes=checked[name]) if name in checked else None
            session.execute(
                update(Integration).where(Integration.id == listed[name].id).values(status="error", last_checked_at=at)
            )
    order = ["Delta", "Alpha", "Zeta", "Gamma21"]  # checked newest first, then never checked by id, newest first
    assert [r.name for r in ctx.integrations.failing(owner)[0]] == order
    assert [r.name for r in ctx.integrations.failing(owner, limit=3)[0]] == order[:3]  # the limit spans both
    assert [r.name for r in ctx.integrations.failing(owner, limit=1)[0]] == order[:1]
