"""An integration's own page (/integration?id=N) through AppTest: health, metrics, checks, activity, the
actions, ownership; and the links to it and to the health-filtered list."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.fields import MASK
from core.models import Integration, utcnow
from tests.app.conftest import button, open_page, read, sign_in, texts
from tests.factories import add_check_record, add_check_records

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

TOKEN = "cw-page-token-canary-0123456789"
TOKEN_2 = "cw-page-token-canary-9876543210"
CLOSED = {"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": TOKEN}  # nothing listens on port 9
PAGE = "app_pages/integration.py"


def stored(ctx, integration_id):
    with ctx.factory() as session:
        return session.scalar(select(Integration).where(Integration.id == integration_id))


def open_detail(at, integration_id):
    at.switch_page(PAGE)
    at.query_params["id"] = str(integration_id)
    at.run()
    assert not at.exception, at.exception
    return at


def everything(at) -> str:
    """What the page shows as text, with its tables and JSON."""
    parts = [texts(at)]
    parts += [read(b.proto.body) for b in at.get("badge")] if at.get("badge") else []
    parts += [e.value.to_csv() for e in at.dataframe]
    parts += [str(j.value) for j in at.json]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(parts)


@pytest.fixture
def detailed(app_env, member):
    """Alice's integration with ten days of checks (day 3 failed), a refused check just now, an edit."""
    view = app_env.integrations.create(member, "Acme desk", "CHATWOOT", CLOSED)
    view = app_env.integrations.update(
        member, view.id, view.version, configuration={**CLOSED, "accountId": "8", "apiKey": TOKEN_2}
    )
    now = utcnow()
    add_check_records(
        app_env,
        [
            dict(integration_id=view.id, at=now - timedelta(days=d, minutes=2), success=d != 3, latency_ms=120 + d)
            for d in range(10)
        ],
    )
    add_check_record(app_env, view.id, now - timedelta(minutes=1), success=False, http_status=401, message="Refused")
    with app_env.factory.begin() as session:
        session.get_one(Integration, view.id).health = "needs_reconnect"
    return view


def test_the_page_shows_health_metrics_checks_activity_and_masked_configuration(app_env, member, detailed):
    at = open_detail(sign_in("alice", "alice-password-1"), detailed.id)
    shown = everything(at)
    assert [t.value for t in at.title] == ["Acme desk"]
    assert "Needs reconnect" in shown
    assert "The service refused its credentials." in shown and "Reconnect it or enter new credentials" in shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Uptime, 7 days"] == "75.00%"  # 6 of 8: day 3 and the refusal just now failed
    assert metrics["Uptime, 30 days"] == f"{9 / 11 * 100:.2f}%"
    assert metrics["Latency p50"].endswith(" ms") and metrics["Latency p95"] == "129 ms"
    checks, activity = at.dataframe[0].value, at.dataframe[1].value
    assert len(checks) == 11 and checks.iloc[0]["Status or code"] == "HTTP 401"
    assert list(activity["What"]) == ["Edited", "Created"]
    assert activity.iloc[0]["Details"] == "accountId: 7 → 8; apiKey: changed"
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    assert TOKEN not in shown and TOKEN_2 not in shown
    assert json.loads(at.json[0].value)["apiKey"] == MASK
    assert [b.label for b in at.button if b.key and b.key.startswith("detail-")] == [
        "Test now",
        "Pause",
        "Edit",
        "Delete",
    ]


@pytest.mark.parametrize("whose", ["someone else's", "missing", "not a number"])
def test_a_foreign_or_missing_id_is_refused_alike(app_env, member, other_member, whose):
    theirs = app_env.integrations.create(other_member, "Bob's desk", "CHATWOOT", CLOSED)
    wanted = {"someone else's": str(theirs.id), "missing": str(theirs.id + 1000), "not a number": "abc"}[whose]
    at = open_detail(sign_in("alice", "alice-password-1"), wanted)
    assert f"No integration {wanted} here: it was deleted or belongs to someone else." in texts(at)
    assert "Bob's desk" not in everything(at)
    assert not at.metric and not at.dataframe
    links = [(e.proto.label, e.proto.page.strip("/")) for e in at.get("page_link")]
    assert ("Back to Integrations", "integrations") in links


def test_pause_and_resume_from_the_page(app_env, member, detailed):
    at = open_detail(sign_in("alice", "alice-password-1"), detailed.id)
    button(at, "Pause").click()
    at.run()
    row = stored(app_env, detailed.id)
    assert (row.health, row.is_active) == ("paused", False)
    assert "Paused" in everything(at) and "is paused" in " ".join(read(t.value) for t in at.toast)
    button(at, "Resume").click()
    at.run()
    row = stored(app_env, detailed.id)
    assert (row.health, row.is_active, row.failures_in_row) == ("unknown", True, 0)
    assert row.next_check_at is not None
    assert "Not checked yet" in everything(at)


def test_test_now_shows_the_result_as_a_toast_and_stores_it(app_env, member, chatwoot_integration):
    view = chatwoot_integration(member)
    at = open_detail(sign_in("alice", "alice-password-1"), view.id)
    assert stored(app_env, view.id).status == "unknown"
    button(at, "Test now").click()
    at.run()
    assert not at.exception
    toast = " ".join(read(t.value) for t in at.toast)
    assert toast.startswith("Acme desk: ") and "Acme Support" in toast
    assert stored(app_env, view.id).status == "connected"
    # What the test found: label: value lines, never a JSON tree.
    [found] = [e for e in at.expander if e.label == "What the test found"]
    listed = read(found.markdown[0].value)
    assert listed.startswith("- **") and ":** " in listed and "{" not in listed, listed
    assert "- **Account info › name:** Acme Support" in listed.splitlines()


def test_test_now_of_an_unreachable_service_says_so(app_env, member):
    view = app_env.integrations.create(member, "Closed", "CHATWOOT", CLOSED)
    at = open_detail(sign_in("alice", "alice-password-1"), view.id)
    button(at, "Test now").click()
    at.run()
    assert [t.icon for t in at.toast] == [":material/error:"]
    assert stored(app_env, view.id).status == "error"
    # The check's class, in words, with what to do next.
    assert "Last check: Network." in texts(at) and "The service could not be reached" in texts(at)


def test_edit_opens_the_shared_dialog_and_delete_goes_back_to_the_list(app_env, member, detailed):
    at = open_detail(sign_in("alice", "alice-password-1"), detailed.id)
    button(at, "Edit").click()
    at.run()
    assert "Integration name" in [t.label.rstrip(" *") for t in at.text_input]
    at = open_detail(sign_in("alice", "alice-password-1"), detailed.id)
    button(at, "Delete").click()
    at.run()
    assert "This cannot be undone." in texts(at)
    button(at, "Delete permanently").click()
    at.run()
    assert not at.exception
    assert stored(app_env, detailed.id) is None
    assert [t.value for t in at.title] == ["Integrations"]


def test_every_list_row_links_to_its_page(app_env, member):
    views = [app_env.integrations.create(member, f"Desk {n}", "CHATWOOT", CLOSED) for n in range(3)]
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/integrations.py")
    table = at.dataframe[0].value
    assert sorted(table["Page"]) == sorted(f"integration?id={v.id}" for v in views)
    assert dict(zip(table["Name"], table["Page"], strict=True))["Desk 1"] == f"integration?id={views[1].id}"


def test_health_links_open_the_list_filtered_by_that_state(app_env, member):
    views = [app_env.integrations.create(member, f"Desk {n}", "CHATWOOT", CLOSED) for n in range(3)]
    with app_env.factory.begin() as session:
        session.get_one(Integration, views[0].id).health = "failing"
        session.get_one(Integration, views[1].id).health = "failing"
    at = sign_in("alice", "alice-password-1")  # Overview
    links = {e.proto.label: e.proto for e in at.get("page_link")}
    assert "Failing: 2" in links and "Connected: 0" in links
    assert links["Failing: 2"].page.strip("/") == "integrations"
    assert "health=failing" in links["Failing: 2"].query_string
    at.switch_page("app_pages/integrations.py")
    at.query_params["health"] = "failing"
    at.run()
    assert sorted(at.dataframe[0].value["Name"]) == ["Desk 0", "Desk 1"]
    assert at.selectbox(key="list_health").value == "Failing"
    at.selectbox(key="list_health").set_value("Any health").run()
    assert len(at.dataframe[0].value) == 3
    assert "health" not in at.query_params


def test_statistics_shows_every_tenants_health_with_links(app_env, admin, member):
    view = app_env.integrations.create(member, "Desk", "CHATWOOT", CLOSED)
    app_env.integrations.pause(member, view.id)
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/statistics.py")
    links = {e.proto.label: e.proto for e in at.get("page_link")}
    assert "health=paused" in links["Paused: 1"].query_string
