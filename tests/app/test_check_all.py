"""Check all on the Integrations page: progress, results in the table, cancel, and stale marking."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.models import Integration, utcnow
from tests.app.conftest import button, page_links, select_rows, sign_in, texts
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts

TOKEN = "bt-page-check-" + "Zx8Cv6Bn4"


@pytest.fixture
def hosts():
    servers = SlowHosts(2, delay=0.05).start()
    yield servers
    servers.stop()


def add_crm(ctx, actor, url: str, name: str):
    return slow_hosts.add_crm(ctx, actor, url, name, TOKEN)


def integrations_page():
    at = sign_in("olga", "olga-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    return at


def run_until_finished(at, seconds: float = 60):  # a loaded machine runs pages slowly
    deadline = time.monotonic() + seconds
    while "check_run" in at.session_state and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert "check_run" not in at.session_state, "the check-all did not finish in time"
    at.run()
    return at


def test_check_all_tests_each_integration_and_shows_the_outcome(app_env, owner, hosts, workers):
    workers(2, periodic=False)  # the engine's consumers (make run starts them with the app)
    hosts.failing.add("127.0.0.2")
    add_crm(app_env, owner, hosts.urls[0], "Good CRM")
    add_crm(app_env, owner, hosts.urls[0], "Second good CRM")
    add_crm(app_env, owner, hosts.urls[1], "Broken CRM")
    at = integrations_page()

    button(at, "Check all").click()
    at.run()
    run_until_finished(at)

    shown = texts(at)
    assert "Checked 3 of 3: 2 connected, 1 failing." in shown
    assert [label for label, _ in page_links(at) if "CRM" in label] == ["Broken CRM"]  # the failing one, linked
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc["Good CRM", "Status"] == "✓ Connected"
    assert table.loc["Broken CRM", "Status"] == "✕ Error"
    assert TOKEN not in shown


def test_cancel_stops_the_run_and_says_so(app_env, owner, workers):
    workers(1, periodic=False)
    slow = SlowHosts(1, delay=0.6).start()
    try:
        for n in range(8):
            add_crm(app_env, owner, slow.urls[0], f"CRM {n}")
        at = integrations_page()
        button(at, "Check all").click()
        at.run()
        button(at, "Cancel").click()
        at.run()
        run_until_finished(at)
    finally:
        slow.stop()
    shown = texts(at)
    assert "Cancelled." in shown and "skipped" in shown
    assert slow.stats()["127.0.0.1"]["served"] < 8


def test_without_a_worker_the_page_says_the_checks_wait_and_a_reload_finds_the_run(app_env, owner, hosts):
    add_crm(app_env, owner, hosts.urls[0], "Waiting CRM")
    at = integrations_page()
    button(at, "Check all").click()
    at.run()
    shown = texts(at)
    assert "Waiting for the task engine to start the 1 check" in shown
    assert "No task engine worker has run yet" in shown
    again = integrations_page()  # another tab, or a reload: the run is read from the database
    assert "Waiting for the task engine to start the 1 check" in texts(again)


def test_stale_integrations_are_marked(app_env, owner, hosts):
    view = add_crm(app_env, owner, hosts.urls[0], "Forgotten CRM")
    with app_env.factory.begin() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == view.id)
            .values(status="connected", last_checked_at=utcnow() - timedelta(days=3))
        )
    at = integrations_page()
    assert list(at.dataframe[0].value.iloc[0]["Status"]) == ["✓ Connected · stale"]
    assert "1 active integration is stale" in texts(at)
    at.selectbox(key="list_status").select("Stale")
    at.run()
    assert list(at.dataframe[0].value["Name"]) == ["Forgotten CRM"]
    at.switch_page("app_pages/overview.py")
    at.run()
    assert {m.label: m.value for m in at.metric}["Stale"] == "1"


def test_the_list_is_paged_and_searchable(app_env, owner, hosts, monkeypatch):
    with app_env.factory.begin() as session:  # 60 rows without 60 encryptions
        session.add_all(
            Integration(owner_id=owner.id, name=f"CRM {n:02d}", type="CRM", provider="CUSTOM", configuration={})
            for n in range(60)
        )
    at = integrations_page()
    assert len(at.dataframe[0].value) == 50 and "Showing 1–50 of 60" in texts(at)
    reads = []
    real_page = type(app_env.integrations).page
    monkeypatch.setattr(type(app_env.integrations), "page", lambda self, *a: reads.append(a) or real_page(self, *a))
    button(at, "Next").click()
    at.run()
    assert list(at.dataframe[0].value["Name"])[:2] == ["CRM 50", "CRM 51"] and "Showing 51–60 of 60" in texts(at)
    assert len(reads) == 1  # one run draws the next page: the click does not draw the list twice
    button(at, "Previous").click()
    at.run()
    assert list(at.dataframe[0].value["Name"])[:1] == ["CRM 00"] and "Showing 1–50 of 60" in texts(at)
    at.text_input(key="list_search").input("CRM 0")
    at.run()
    assert len(at.dataframe[0].value) == 10 and "Showing 1–10 of 10" in texts(at)  # a new search starts at 1


def test_the_failing_list_groups_by_cause_and_links_each_integration(app_env, owner, hosts, workers):
    workers(2, periodic=False)
    hosts.failing.add("127.0.0.2")  # answers 401: the credentials are refused
    add_crm(app_env, owner, hosts.urls[0], "Good CRM")
    refused = [add_crm(app_env, owner, hosts.urls[1], f"Refused CRM {n}") for n in (1, 2)]
    closed = add_crm(app_env, owner, "http://127.0.0.1:9", "Closed CRM")  # nothing listens: network
    at = integrations_page()
    button(at, "Check all").click()
    at.run()
    run_until_finished(at)
    shown = texts(at)
    assert "Credentials refused: 2 integrations" in shown and "Network: 1 integration" in shown
    assert shown.index("Credentials refused") < shown.index("Network:")  # the largest group first
    assert "The service refused the credentials." in shown
    links = [(e.proto.label, e.proto.query_string) for e in at.get("page_link") if "CRM" in e.proto.label]
    assert sorted(links) == sorted(
        [(f"Refused CRM {n}", f"id={v.id}") for n, v in zip((1, 2), refused, strict=True)]
        + [("Closed CRM", f"id={closed.id}")]
    )


def test_check_all_keeps_its_scope_and_drops_a_result_that_no_longer_describes_the_list(
    app_env, admin, owner, hosts, workers
):
    workers(2, periodic=False)
    add_crm(app_env, owner, hosts.urls[0], "Olga's CRM")
    at = sign_in("root", "admin-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    at.selectbox(key="check_whose").select("Everyone's")
    at.selectbox(key="check_tier").select("Enterprise")  # tiers in words
    at.run()
    button(at, "Check all").click()
    at.run()
    run_until_finished(at)
    assert "Checked 1 of 1: 1 connected, 0 failing." in texts(at)
    assert at.selectbox(key="check_whose").value == "Everyone's"  # the scope is the same after the run
    assert at.selectbox(key="check_tier").value == "Enterprise"
    at.selectbox(key="list_provider").select("Chatwoot")  # the list (and Check all's scope) changed
    at.run()
    assert "Checked 1 of 1" not in texts(at)
    at.selectbox(key="list_provider").select("All providers")
    at.run()
    assert "Checked 1 of 1" not in texts(at)  # gone, not hidden: a new run is needed


def test_testing_selected_rows_runs_only_those_on_the_engine(app_env, owner, hosts, workers):
    workers(2, periodic=False)
    hosts.failing.add("127.0.0.2")
    add_crm(app_env, owner, hosts.urls[0], "Good CRM")
    add_crm(app_env, owner, hosts.urls[1], "Broken CRM")
    add_crm(app_env, owner, hosts.urls[0], "Left alone CRM")
    at = select_rows(integrations_page(), "Broken CRM", "Good CRM")

    button(at, "Test 2").click()
    at.run()
    assert "check_run" in at.session_state  # a run on the engine, not tests inside the page's script
    run_until_finished(at)

    assert "Checked 2 of 2: 1 connected, 1 failing." in texts(at)
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc["Good CRM", "Status"] == "✓ Connected"
    assert table.loc["Broken CRM", "Status"] == "✕ Error"
    assert table.loc["Left alone CRM", "Status"] == "○ Never tested"
