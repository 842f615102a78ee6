"""The Activity page: members see their own events, administrators everyone's, with a CSV download."""

from __future__ import annotations

from tests.app.conftest import sign_in, texts

CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "activity-canary-token-1"}


def open_activity(username: str, password: str):
    at = sign_in(username, password)
    at.switch_page("app_pages/activity.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_member_sees_own_events_and_downloads_them(app_env, member, other_member):
    app_env.integrations.create(member, "Alice desk", "CHATWOOT", CONFIG)
    app_env.integrations.create(other_member, "Bob desk", "CHATWOOT", CONFIG)
    at = open_activity("alice", "alice-password-1")
    table = at.dataframe[0].value
    assert set(table["Who"]) == {"alice"}
    assert "Alice desk" in set(table["Integration"]) and "Bob desk" not in set(table["Integration"])
    assert [s.label for s in at.selectbox] == ["Action", "Integration"]  # no "Who" filter for members
    assert "activity-canary-token-1" not in texts(at)
    assert at.get("download_button")


def test_admin_filters_by_person(app_env, admin, member, other_member):
    app_env.integrations.create(member, "Alice desk", "CHATWOOT", CONFIG)
    app_env.integrations.create(other_member, "Bob desk", "CHATWOOT", CONFIG)
    at = open_activity("root", "admin-password-1")
    assert {"alice", "bob"} <= set(at.dataframe[0].value["Who"])
    who = next(s for s in at.selectbox if s.label == "Who")
    who.set_value("bob")
    at.run()
    assert set(at.dataframe[0].value["Who"]) == {"bob"}
