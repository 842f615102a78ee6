"""The Statistics page: administrators see every tenant's numbers, filter them and download them; members
are refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.models import utcnow
from tests.app.conftest import button, open_page, sign_in, texts
from tests.factories import add_check, add_integration

PAGE = "app_pages/statistics.py"


def add(ctx, owner, name, provider="CHATWOOT", kind="CRM", status="connected", checked=True, message=None):
    last = utcnow() - timedelta(minutes=5) if checked else None
    # Created three days ago: never checked since, so stale.
    integration_id = add_integration(
        ctx, owner, name, provider, kind, status, checked=last, message=message, created=utcnow() - timedelta(days=3)
    )
    if checked:
        add_check(ctx, integration_id, outcome="failure" if status == "error" else "success")
    return integration_id


@pytest.fixture
def tenants(app_env, admin, member, other_member):
    """alice (FREE): Chatwoot connected, HubSpot in error; bob (STARTER): PostgreSQL never checked (stale)."""
    add(app_env, member, "Alice desk")
    add(app_env, member, "Alice sales", "HUBSPOT", status="error", message="The token was revoked.")
    add(app_env, other_member, "Bob db", "POSTGRESQL", "DATABASE", status="unknown", checked=False)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def multiselect(at, label):
    return next(m for m in at.multiselect if m.label == label)


def test_admin_sees_every_tenant(tenants, deferred):
    at = open_page(sign_in("root", "admin-password-1"), PAGE)
    assert [t.value for t in at.title] == ["Statistics"]
    assert metrics(at) == {"Total": "3", "Active": "3", "In error": "1", "Stale": "1"}
    shown = texts(at)
    for section in ("By tier", "By provider", "By type", "By status", "Integrations in error", "Checks and errors"):
        assert section in shown
    assert "as of " in shown and " UTC" in shown
    assert "Showing 1 of 1 integration in error" in shown

    tables = {t.columns[0]: t for t in (d.value for d in at.dataframe)}
    by_tier = tables["Tier"].set_index("Tier")
    assert by_tier.loc["Free", "Total"] == 2 and by_tier.loc["Free", "Error"] == 1
    assert by_tier.loc["Starter", "Stale"] == 1
    by_provider = tables["Provider"].set_index("Provider")
    assert by_provider.loc["HubSpot", "Error"] == 1 and by_provider.loc["PostgreSQL", "Not tested"] == 1
    assert tables["Type"].set_index("Type").loc["CRM", "Total"] == 2
    assert tables["Status"].set_index("Status").loc["Connected", "Total"] == 1
    errors = tables["Name"]
    assert list(errors["Name"]) == ["Alice sales"] and list(errors["Message"]) == ["The token was revoked."]
    assert list(errors["Owner"]) == ["alice"]

    assert "2 checks, 1 error" in shown
    assert {b.proto.label for b in at.get("download_button")} == {
        "Counts (CSV)",
        "Integrations in error (CSV)",
        "Trend (CSV)",
    }
    # Each file is written when its button is clicked, from the numbers shown.
    written = {name.split("-")[1]: make() for name, make in deferred.items() if name.startswith("statistics-")}
    assert written["counts"].startswith("Tier,Provider") and "HubSpot" in written["counts"]
    assert "The token was revoked." in written["errors"]
    assert len(written["trend"].splitlines()) == 31  # the header and 30 days


def test_filters_change_what_is_shown(tenants):
    at = open_page(sign_in("root", "admin-password-1"), PAGE)
    multiselect(at, "Tier").set_value(["STARTER"])
    at.run()
    assert not at.exception, at.exception
    assert metrics(at) == {"Total": "1", "Active": "1", "In error": "0", "Stale": "1"}
    assert "No integration is in error among those filtered" in texts(at)
    assert "0 checks" in texts(at)

    multiselect(at, "Tier").set_value([])
    multiselect(at, "Provider").set_value(["HUBSPOT"])
    at.run()
    assert metrics(at)["Total"] == "1" and metrics(at)["In error"] == "1"
    assert "1 check, 1 error" in texts(at)

    multiselect(at, "Provider").set_value([])
    multiselect(at, "Status").set_value(["connected"])
    at.run()
    assert metrics(at) == {"Total": "1", "Active": "1", "In error": "0", "Stale": "0"}
    assert "The status filter does not apply here" in texts(at)


def test_refresh_reads_again(app_env, tenants, member):
    at = open_page(sign_in("root", "admin-password-1"), PAGE)
    add(app_env, member, "Alice later", "ZOHO", status="error", message="Down")
    at.run()
    assert metrics(at)["Total"] == "3"  # cached for a minute
    button(at, "Refresh").click()
    at.run()
    assert metrics(at)["Total"] == "4" and metrics(at)["In error"] == "2"


def test_member_cannot_reach_the_page(app_env, member, tenants):
    at = sign_in("alice", "alice-password-1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


def test_page_itself_refuses_a_member(app_env, member, tenants):
    """Even run directly (a mistake in the navigation), the page shows a member nothing but why."""
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / PAGE), default_timeout=30)
    at.session_state["actor"] = member
    at.run()
    assert not at.exception, at.exception
    assert "Only administrators can see statistics" in texts(at)
    assert not at.metric and not at.dataframe and not at.get("download_button")


def test_empty_database_says_what_to_expect(app_env, admin):
    at = open_page(sign_in("root", "admin-password-1"), PAGE)
    assert metrics(at)["Total"] == "0"
    assert "No integrations yet" in texts(at)
