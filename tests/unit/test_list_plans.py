"""The Integrations list filtered by status, provider or health reads its page in name order from an
index (migration 0023), on SQLite, the embedded default: before, the planner read every match and sorted
it (2.3 s for an administrator's "Connected" list at a million integrations)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import db
from core.integrations.service import ListQuery
from core.models import Integration


def plan(ctx, actor, query: ListQuery) -> str:
    service = ctx.integrations
    listing = (
        service._visible(actor)
        .where(*service._list_conditions(actor, query))
        .order_by(Integration.name_key, Integration.id)
        .limit(50)
    )
    compiled = str(listing.compile(ctx.engine, compile_kwargs={"literal_binds": True}))
    with ctx.engine.connect() as connection:
        return " / ".join(row[3] for row in connection.execute(text("EXPLAIN QUERY PLAN " + compiled)))


@pytest.fixture
def sqlite_ctx(ctx):
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner: PostgreSQL's plans depend on the statistics of the rows it holds")
    return ctx


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ListQuery(status="error"), "ix_integrations_status_name"),
        (ListQuery(status="connected"), "ix_integrations_status_name"),
        (ListQuery(provider="HUBSPOT"), "ix_integrations_provider_name"),
        (ListQuery(health="failing"), "ix_integrations_health_name"),
        (ListQuery(), "ix_integrations_name_key"),
    ],
)
def test_an_administrators_filtered_list_reads_its_page_in_order(sqlite_ctx, admin, query, index):
    found = plan(sqlite_ctx, admin, query)
    assert index in found and "TEMP B-TREE" not in found, found


def test_the_daily_statistics_refresh_analyzes_the_lists_tables(sqlite_ctx, member):
    for n in range(3):
        sqlite_ctx.integrations.create(
            member, f"Desk {n}", "CHATWOOT", {"baseUrl": "https://desk.test", "accountId": "1", "apiKey": "t" * 12}
        )
    db.refresh_planner_statistics(sqlite_ctx.engine)
    with sqlite_ctx.engine.connect() as connection:
        analyzed = set(connection.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
    assert set(db.PLANNED_TABLES) <= analyzed
