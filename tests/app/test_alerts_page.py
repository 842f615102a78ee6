"""The Alerts page through AppTest: the default, adding a subscription in its dialog, a test alert, the
warning for a failing channel, deletion with confirmation, and incidents for administrators only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import AlertSubscription
from tests.app.conftest import button, dialogs, open_page, sign_in, text_input, texts
from tests.contract.alerts_helpers import Clock, add_integration, change, make_pipeline

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

HOOK = "/services/T1/B1/" + "pageSecretToken4242"


def alerts_page(username: str, password: str):
    return open_page(sign_in(username, password), "app_pages/alerts.py")


def test_a_member_sees_the_default_and_adds_a_slack_subscription_that_works(app_env, member, httpserver):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    at = alerts_page("alice", "alice-password-1")
    assert [t.value for t in at.title] == ["Alerts"]
    assert "alerts go by e-mail to your account address (alice@example.com)" in texts(at)
    assert "Open incidents" not in texts(at)

    button(at, "Add a subscription").click()
    at.run()
    at.selectbox(key="alerts:channel").select("slack")
    at.run()
    assert [r.options for r in at.radio] == [["My integrations"]]  # a member has no "everyone's"
    text_input(at, "Slack webhook URL").input(httpserver.url_for(HOOK))
    button(at, "Save subscription").click()
    at.run()
    assert not at.exception, at.exception
    [view] = app_env.subscriptions.list(member)
    assert (view.channel, view.states, view.scope) == ("slack", ("failing", "paused", "needs_reconnect"), "own")
    shown = texts(at)
    assert "Slack webhook" in shown and "pageSecretToken" not in shown
    with app_env.factory() as session:
        assert "pageSecretToken" not in session.scalars(select(AlertSubscription.target)).one()

    button(at, "Send a test alert").click()
    at.run()
    assert f"Sent a test alert to {httpserver.url_for('/').rstrip('/')}. Check that it arrived." in texts(at)
    assert len(httpserver.log) == 1


def test_a_failing_channel_is_named_with_what_to_do(app_env, member, httpserver):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("invalid_token", status=403)
    app_env.subscriptions.create(member, "slack", httpserver.url_for(HOOK), ["failing"])
    at = alerts_page("alice", "alice-password-1")
    assert not at.warning
    button(at, "Send a test alert").click()
    at.run()
    shown = texts(at)
    assert "refused the alert (403" in shown
    assert f"Alerts by Slack webhook to {httpserver.url_for('/').rstrip('/')} are not getting through" in shown
    assert "then use **Send a test alert**" in shown
    assert "pageSecretToken" not in shown


def test_delete_asks_first(app_env, member):
    app_env.subscriptions.create(member, "email", "ops@example.com", ["failing"])
    at = alerts_page("alice", "alice-password-1")
    button(at, "Delete…").click()
    at.run()
    assert "Delete the E-mail subscription to **ops@example.com**? This cannot be undone." in texts(at)
    assert app_env.subscriptions.list(member)  # nothing deleted yet
    [dialog] = dialogs(at)
    assert dialog.dismissible is True  # nothing typed to lose: Escape may close it
    confirm = button(at, "Delete subscription")
    assert confirm.proto.type == "primary" and confirm.proto.icon == ":material/delete_forever:"
    confirm.click()
    at.run()
    assert app_env.subscriptions.list(member) == []


def test_administrators_see_open_incidents(app_env, admin, owner):
    clock = Clock()
    pipeline = make_pipeline(app_env, clock)
    for n in range(5):
        change(app_env, add_integration(app_env, owner, f"Down {n}"), "failing", clock.advance(1))
    pipeline.process_changes()
    at = alerts_page("root", "admin-password-1")
    assert "Open incidents" in texts(at)
    [frame] = [d.value for d in at.dataframe if "Provider or host" in d.value.columns]
    assert frame["Integrations"].tolist() == [5] and frame["Provider or host"].tolist() == ["HUBSPOT"]


def test_the_subscription_dialog_asks_before_throwing_away_what_was_typed(app_env, member):
    at = alerts_page("alice", "alice-password-1")
    button(at, "Add a subscription").click()
    at.run()
    # Escape and a click beside it do not close it: only Save or Cancel do.
    [dialog] = dialogs(at)
    assert dialog.title == "Add an alert subscription" and dialog.dismissible is False

    # Nothing typed: Cancel closes at once.
    button(at, "Cancel").click()
    at.run()
    assert "Save subscription" not in [b.label for b in at.button]

    # Something typed: Cancel asks; Keep editing keeps it; Discard closes.
    button(at, "Add a subscription").click()
    at.run()
    text_input(at, "E-mail address").input("ops@example.com")
    button(at, "Cancel").click()
    at.run()
    assert "Discard the changes you made to this subscription?" in texts(at)
    button(at, "Keep editing").click()
    at.run()
    assert text_input(at, "E-mail address").value == "ops@example.com"
    assert "Discard the changes" not in texts(at)
    button(at, "Cancel").click()
    at.run()
    button(at, "Discard changes").click()
    at.run()
    assert not at.exception
    assert "Save subscription" not in [b.label for b in at.button]
    assert app_env.subscriptions.list(member) == []


def test_a_refused_field_is_named_in_one_message(app_env, member):
    at = alerts_page("alice", "alice-password-1")
    button(at, "Add a subscription").click()
    at.run()
    text_input(at, "E-mail address").input("not an address")
    button(at, "Save subscription").click()
    at.run()
    [error] = at.error
    assert error.value.startswith("E-mail address: ") or error.value.startswith("E\\-mail address\\: ")
    assert not at.toast and not at.success and not at.warning  # one message for one outcome
