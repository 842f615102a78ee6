"""Words a person uses, and lists that lead somewhere (issue 15, "Words and messages"): Activity as
sentences, failing lists grouped by cause linking to each integration, Overview tiles opening the filtered
list, tiers as "Pro Plus"."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from core import audit
from core.models import Integration, utcnow
from tests.app.conftest import open_page, sign_in, texts
from tests.factories import add_integration

CHATWOOT = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "words-canary-token-1"}


def failing(ctx, owner, name: str, provider: str, check_class: str, message: str) -> int:
    integration_id = add_integration(
        ctx, owner, name, provider, status="error", checked=utcnow() - timedelta(minutes=3), message=message
    )
    with ctx.factory.begin() as session:
        session.execute(
            update(Integration).where(Integration.id == integration_id).values(last_check_class=check_class)
        )
    return integration_id


def page_link_params(at) -> list[tuple[str, str, dict[str, str]]]:
    """(label, page, query parameters) of every page link."""
    found = []
    for e in at.get("page_link"):
        params = dict(pair.split("=", 1) for pair in e.proto.query_string.split("&") if pair)
        found.append((e.proto.label, e.proto.page, params))
    return found


def test_activity_says_what_happened_in_sentences(app_env, member):
    view = app_env.integrations.create(member, "Acme", "CHATWOOT", CHATWOOT)
    app_env.integrations.update(member, view.id, view.version, name="Acme EU")
    with app_env.factory.begin() as session:
        audit.record(
            session,
            member,
            "integration.check_all",
            "success",
            None,
            {"scope": "own", "checked": 12, "connected": 9, "failing": 3, "skipped": 0, "cancelled": False},
        )
        audit.record(session, member, "integration.test", "success", view.id, {"provider": "CHATWOOT", "message": "OK"})
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/activity.py")
    assert not at.exception
    said = list(at.dataframe[0].value["What happened"])
    assert said[:4] == [
        "Tested Acme EU - Chatwoot: connected",
        "Check all of 12 integrations: 3 failed",
        "Renamed Acme to Acme EU",
        "Created Acme EU - Chatwoot",  # by its name today, so it can be found
    ]
    assert not any("integration." in s or "_" in s for s in said)
    assert set(at.dataframe[0].value["Outcome"]) == {"Done"}
    action = next(s for s in at.selectbox if s.label == "Action")
    assert "Check all" in action.options and not any("." in o for o in action.options)
    assert "words-canary-token-1" not in texts(at)


def test_overview_tiles_open_the_filtered_list(app_env, member):
    app_env.integrations.create(member, "Acme", "CHATWOOT", CHATWOOT)
    at = sign_in("alice", "alice-password-1")
    links = page_link_params(at)
    tiles = [(label, params) for label, page, params in links if label == "Open"]
    assert [params for _, params in tiles] == [
        {},
        {"status": "active"},
        {"status": "inactive"},
        {"status": "error"},
        {"status": "stale"},
    ]
    assert all(page == "integrations" for label, page, _ in links if label == "Open")
    assert ("Chatwoot: 1 integration", "integrations", {"provider": "CHATWOOT"}) in links


def test_overview_lists_failing_integrations_by_cause_with_links(app_env, member, other_member):
    refused = failing(app_env, member, "Acme sales", "HUBSPOT", "auth", "401 Unauthorized")
    slow = failing(app_env, member, "Acme db", "POSTGRESQL", "timeout", "timed out")
    also_refused = failing(app_env, member, "Acme crm", "PIPEDRIVE", "auth", "401")
    failing(app_env, other_member, "Bob sales", "HUBSPOT", "auth", "401")  # not alice's
    at = sign_in("alice", "alice-password-1")
    assert not at.exception
    assert "Failing: 3 integrations, by cause" in texts(at)
    causes = [e.label for e in at.expander]
    assert causes[:2] == ["Credentials refused · 2 integrations", "No answer in time · 1 integration"]
    links = {params.get("id"): label for label, page, params in page_link_params(at) if page == "integration"}
    assert set(links) == {str(refused), str(slow), str(also_refused)}
    assert links[str(refused)] == "Acme sales · HubSpot"
    assert "The service refused the credentials." in texts(at)


def test_statistics_groups_failing_by_cause_and_names_tiers_in_words(app_env, admin, ctx):
    pro = ctx.users.create(None, "pat", "Pat Pro", "pat@example.com", "pat-password-123", "member", "PRO_PLUS")
    failing(app_env, pro.actor(), "Pat sales", "HUBSPOT", "network", "connection refused")
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/statistics.py")
    assert not at.exception
    assert next(e.label for e in at.expander) == "Not reachable · 1 integration"
    assert any(page == "integration" and label == "Pat sales · HubSpot" for label, page, _ in page_link_params(at))
    tables = {t.columns[0]: t for t in (d.value for d in at.dataframe)}
    assert "Pro Plus" in set(tables["Tier"]["Tier"])
    errors = tables["Name"]
    assert list(errors["Tier"]) == ["Pro Plus"] and list(errors["Cause"]) == ["Not reachable"]
    tier_filter = next(m for m in at.multiselect if m.label == "Tier")
    assert "PRO_PLUS" not in texts(at)
    assert tier_filter.format_func("PRO_PLUS") == "Pro Plus"
