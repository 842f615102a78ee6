"""The alert pipeline end to end, against a Slack-compatible receiver (pytest-httpserver on 127.0.0.1):
one alert per worsening and one per recovery, grouping, outages as one incident, retries with backoff,
idempotence, and who may subscribe to what."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.alerts.pipeline import backoff
from core.errors import NotFoundError, ValidationError
from core.models import AlertSubscription, Incident
from tests.contract.alerts_helpers import (
    Clock,
    add_integration,
    audit_rows,
    change,
    deliver_due,
    deliveries,
    make_pipeline,
    posted,
)

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

HOOK = "/services/T000/B000/" + "slackTokenXYZ123456789"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def pipeline(ctx, clock):
    return make_pipeline(ctx, clock)


@pytest.fixture
def slack(ctx, owner, httpserver):
    """Olga's subscription: Slack, for failing and needs_reconnect, with recoveries."""
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    return ctx.subscriptions.create(owner, "slack", httpserver.url_for(HOOK), ["failing", "needs_reconnect"])


def test_one_alert_when_it_worsens_and_one_when_it_recovers(ctx, owner, pipeline, clock, slack, httpserver):
    iid = add_integration(ctx, owner, "Acme HubSpot")
    change(ctx, iid, "failing", clock())
    [delivery_id] = pipeline.process_changes()

    early = pipeline.deliver(delivery_id)
    assert early.status == "retry" and early.retry_at == clock() + pipeline.window  # grouping window first
    assert posted(httpserver, HOOK) == []

    clock.advance(121)
    assert pipeline.deliver(delivery_id).status == "sent"
    [alert] = posted(httpserver, HOOK)
    assert "Failing: Acme HubSpot (HubSpot)" in alert["text"]
    assert "Fix what the last check's message names" in alert["text"]  # the next step from health.MEANING
    assert pipeline.deliver(delivery_id).status == "done"  # idempotent: sent once
    assert len(posted(httpserver, HOOK)) == 1

    change(ctx, iid, "connected", clock())
    [recovery] = pipeline.process_changes()
    clock.advance(121)
    assert pipeline.deliver(recovery).status == "sent"
    assert "Recovered: Acme HubSpot" in posted(httpserver, HOOK)[1]["text"]
    [sent] = audit_rows(ctx, "alert.sent")[:1]
    assert sent.outcome == "success" and sent.integration_id == iid
    assert "slackToken" not in str([a.details for a in audit_rows(ctx, "alert.sent")])


def test_a_state_the_subscription_does_not_list_is_not_alerted(ctx, owner, pipeline, clock, slack, httpserver):
    iid = add_integration(ctx, owner, "Flaky")
    change(ctx, iid, "degraded", clock())
    assert pipeline.process_changes() == []
    change(ctx, iid, "connected", clock.advance(10))  # never told of the worsening: no recovery either
    assert pipeline.process_changes() == []


def test_recovering_within_the_window_sends_nothing(ctx, owner, pipeline, clock, slack, httpserver):
    iid = add_integration(ctx, owner, "Blip")
    change(ctx, iid, "failing", clock())
    [worse] = pipeline.process_changes()
    change(ctx, iid, "connected", clock.advance(30))
    assert pipeline.process_changes() == []
    clock.advance(200)
    assert pipeline.deliver(worse).status == "done"
    assert posted(httpserver, HOOK) == []
    assert [d.status for d in deliveries(ctx)] == ["suppressed"]


def test_processing_the_same_changes_twice_makes_no_second_delivery(ctx, owner, pipeline, clock, slack):
    first = add_integration(ctx, owner, "One")
    second = add_integration(ctx, owner, "Two", provider="PIPEDRIVE")
    change(ctx, first, "failing", clock())
    change(ctx, second, "needs_reconnect", clock())
    created = pipeline.process_changes()
    assert len(created) == 2
    assert pipeline.process_changes() == []
    assert make_pipeline(ctx, clock).process_changes() == []  # another process: nothing left to claim
    assert len(deliveries(ctx)) == 2


def test_the_owner_without_subscriptions_gets_the_default_email(ctx, owner, pipeline, clock):
    iid = add_integration(ctx, owner, "Default")
    change(ctx, iid, "degraded", clock())
    assert pipeline.process_changes() == []  # degraded is not in the default
    change(ctx, iid, "failing", clock.advance(5))
    [delivery_id] = pipeline.process_changes()
    [row] = deliveries(ctx)
    assert (row.id, row.channel, row.target_hint, row.recipient_key) == (
        delivery_id,
        "email",
        "olga@example.com",
        f"owner:{owner.id}",
    )


def test_an_administrators_scope_all_subscription_covers_everyone(ctx, owner, admin, pipeline, clock, httpserver):
    httpserver.expect_request("/ops", method="POST").respond_with_data("ok")
    ctx.subscriptions.create(admin, "slack", httpserver.url_for("/ops"), ["failing"], scope="all")
    iid = add_integration(ctx, owner, "Olga's CRM")
    change(ctx, iid, "failing", clock())
    pipeline.process_changes()
    assert sorted(d.recipient_key.split(":")[0] for d in deliveries(ctx)) == ["owner", "sub"]


def test_a_failing_channel_is_retried_with_backoff_then_delivered(ctx, owner, pipeline, clock, httpserver):
    httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("upstream down", status=500)
    httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("ok", status=200)
    ctx.subscriptions.create(owner, "slack", httpserver.url_for("/flaky"), ["failing"])
    iid = add_integration(ctx, owner, "Retried")
    change(ctx, iid, "failing", clock())
    [delivery_id] = pipeline.process_changes()
    clock.advance(121)

    first = pipeline.deliver(delivery_id)
    assert first.status == "retry" and first.retry_at == clock() + backoff(1)
    assert "failed to take the alert (500" in first.message and "tried again later" in first.message
    [failed] = audit_rows(ctx, "alert.failed")
    assert failed.outcome == "failure" and failed.details["attempt"] == 1
    [problem] = ctx.subscriptions.failing_channels(owner)
    assert problem.retrying and "500" in problem.error

    assert pipeline.deliver(delivery_id).status == "retry"  # not before its backoff: nothing sent
    assert len(httpserver.log) == 1
    clock.advance(backoff(1).total_seconds())
    assert pipeline.deliver(delivery_id).status == "sent"
    [row] = deliveries(ctx)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert ctx.subscriptions.failing_channels(owner) == []
    assert len(audit_rows(ctx, "alert.sent")) == 1


def test_backoff_doubles_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(20).total_seconds() == 3600


def test_a_revoked_webhook_fails_for_good_and_the_reason_has_no_secret(ctx, owner, pipeline, clock, httpserver):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("no_service", status=404)
    ctx.subscriptions.create(owner, "slack", httpserver.url_for(HOOK), ["failing"])
    iid = add_integration(ctx, owner, "Gone")
    change(ctx, iid, "failing", clock())
    [delivery_id] = pipeline.process_changes()
    clock.advance(121)
    outcome = pipeline.deliver(delivery_id)
    assert outcome.status == "failed"
    assert "refused the alert (404" in outcome.message and "no_service" in outcome.message
    [problem] = ctx.subscriptions.failing_channels(owner)
    assert not problem.retrying
    for text in (outcome.message, problem.error, str(audit_rows(ctx, "alert.failed")[0].details)):
        assert "slackToken" not in text and "B000" not in text


def test_attempts_stop_at_alert_max_attempts(ctx, owner, clock, httpserver):
    httpserver.expect_request("/down", method="POST").respond_with_data("busy", status=503)
    pipeline = make_pipeline(ctx, clock, alert_max_attempts=3)
    ctx.subscriptions.create(owner, "slack", httpserver.url_for("/down"), ["failing"])
    iid = add_integration(ctx, owner, "Never")
    change(ctx, iid, "failing", clock())
    [delivery_id] = pipeline.process_changes()
    statuses = []
    for _ in range(10):  # bounded: three attempts are allowed
        clock.advance(3600)
        statuses.append(pipeline.deliver(delivery_id).status)
        if statuses[-1] != "retry":
            break
    assert statuses == ["retry", "retry", "failed"]
    assert len(httpserver.log) == 3


def test_an_outage_of_one_provider_is_one_incident_alert_and_its_recovery_one_more(
    ctx, owner, admin, pipeline, clock, slack, httpserver
):
    ids = [add_integration(ctx, owner, f"Tenant {n}") for n in range(6)]
    for n, iid in enumerate(ids):
        change(ctx, iid, "failing", clock.advance(10 if n else 0))
    pipeline.process_changes()

    with ctx.factory() as session:
        [incident] = session.scalars(select(Incident)).all()
        assert (incident.key, incident.member_count, incident.closed_at) == ("provider:HUBSPOT", 6, None)
    assert [i.member_count for i in ctx.subscriptions.open_incidents(admin)] == [6]

    clock.advance(200)
    assert deliver_due(pipeline, clock) == {"sent": 1}
    [alert] = posted(httpserver, HOOK)
    assert "Incident: 6 integrations failing (HubSpot integrations)" in alert["text"]
    assert "Tenant 0" in alert["text"] and "Tenant 5" in alert["text"]
    kinds = sorted((d.kind, d.status) for d in deliveries(ctx))
    assert kinds == [("incident_opened", "sent")] + [("worsened", "suppressed")] * 6

    # While it is open, more of them failing join it without alerts of their own.
    late = add_integration(ctx, owner, "Tenant late")
    change(ctx, late, "failing", clock.advance(5))
    assert pipeline.process_changes() == []
    assert pipeline.close_recovered_incidents() == []  # nobody recovered yet

    for iid in [*ids, late]:
        change(ctx, iid, "connected", clock.advance(1))
    assert pipeline.process_changes() == []  # their recoveries are the incident's
    assert len(pipeline.close_recovered_incidents()) == 1  # one "closed" alert, for Olga's Slack
    assert pipeline.close_recovered_incidents() == []
    assert deliver_due(pipeline, clock) == {"sent": 1}
    texts = [a["text"] for a in posted(httpserver, HOOK)]
    assert len(texts) == 2 and "Incident over: HubSpot integrations recovered" in texts[1]
    with ctx.factory() as session:
        [incident] = session.scalars(select(Incident)).all()
        assert incident.closed_at is not None and incident.open_key is None and incident.member_count == 7
    assert not [d for d in deliveries(ctx) if d.kind in ("worsened", "recovered") and d.status != "suppressed"]


def test_members_still_down_when_the_incident_closes_get_their_own_alert(
    ctx, owner, pipeline, clock, slack, httpserver
):
    ctx.subscriptions.update(owner, slack.id, None, ["failing", "paused"], True, "own", True)
    ids = [add_integration(ctx, owner, f"Shop {n}") for n in range(5)]
    for iid in ids:
        change(ctx, iid, "failing", clock.advance(1))
    pipeline.process_changes()
    for iid in ids[:4]:
        change(ctx, iid, "connected", clock.advance(1))
    change(ctx, ids[4], "paused", clock.advance(1))
    pipeline.process_changes()
    created = pipeline.close_recovered_incidents()
    assert len(created) == 2  # the incident's "closed", and Shop 4's own "paused"
    clock.advance(1)
    deliver_due(pipeline, clock)
    texts = [a["text"] for a in posted(httpserver, HOOK)]
    assert any(t.startswith("*Paused: Shop 4") for t in texts), texts
    assert sum("Incident over" in t for t in texts) == 1


def test_fewer_than_the_threshold_are_alerted_one_by_one(ctx, owner, admin, pipeline, clock, slack, httpserver):
    for n in range(4):
        change(ctx, add_integration(ctx, owner, f"Alone {n}"), "failing", clock.advance(1))
    assert len(pipeline.process_changes()) == 4
    clock.advance(200)
    deliver_due(pipeline, clock)
    assert len(posted(httpserver, HOOK)) == 4
    assert ctx.subscriptions.open_incidents(admin) == []


def test_changes_spread_wider_than_the_window_open_no_incident(ctx, owner, pipeline, clock, slack):
    for n in range(6):
        change(ctx, add_integration(ctx, owner, f"Slow {n}"), "failing", clock.advance(60))
    pipeline.process_changes()
    with ctx.factory() as session:
        assert session.scalars(select(Incident)).all() == []


def test_one_host_failing_for_many_providers_is_one_incident(ctx, owner, pipeline, clock, slack):
    # The host is the one the per-host check cap counts: each provider's own address field.
    configs = [
        ("CHATWOOT", {"baseUrl": "https://crm.tenant.example/api"}),
        ("CUSTOM", {"apiEndpoint": "https://crm.tenant.example/v2"}),
    ]
    for n in range(5):
        provider, config = configs[n % 2]
        change(ctx, add_integration(ctx, owner, f"Host {n}", provider=provider, **config), "failing", clock.advance(1))
    pipeline.process_changes()
    with ctx.factory() as session:
        [incident] = session.scalars(select(Incident)).all()
        assert (incident.key, incident.host, incident.member_count) == (
            "host:crm.tenant.example",
            "crm.tenant.example",
            5,
        )


# ----- subscriptions ------------------------------------------------------------------------------------


def test_a_member_cannot_subscribe_to_everyones_integrations(ctx, member):
    with pytest.raises(ValidationError) as refused:
        ctx.subscriptions.create(member, "email", "alice@example.com", ["failing"], scope="all")
    assert "Only administrators" in refused.value.errors["scope"]
    assert ctx.subscriptions.list(member) == []


def test_subscriptions_are_checked_and_their_credentials_encrypted(ctx, member, other_member, audit_texts):
    with pytest.raises(ValidationError) as bad:
        ctx.subscriptions.create(member, "email", "not an address", ["failing"])
    assert "e-mail address" in bad.value.errors["target"]
    with pytest.raises(ValidationError) as bad:
        ctx.subscriptions.create(member, "slack", "ftp://hooks.example/x", ["failing"])
    assert "https://" in bad.value.errors["target"]
    with pytest.raises(ValidationError) as bad:
        ctx.subscriptions.create(member, "webhook", "https://hooks.example/x", ["failing"], secret="short")
    assert "at least 24" in bad.value.errors["secret"]

    url = "https://hooks.slack.example/services/" + "T1/B2/secretPathToken987654"
    view = ctx.subscriptions.create(member, "slack", url, ["failing"])
    assert (view.target_hint, view.shown_target) == ("https://hooks.slack.example", "••••••••")
    with ctx.factory() as session:
        row = session.get(AlertSubscription, view.id)
        assert row.target.startswith("enc:v2:") and "secretPathToken" not in row.target
    assert all("secretPathToken" not in t for t in audit_texts())

    with pytest.raises(NotFoundError):  # someone else's subscription is not theirs to change
        ctx.subscriptions.delete(other_member, view.id)
    ctx.subscriptions.update(member, view.id, "••••••••", ["paused"], False, "own", False)  # the mask keeps it
    with ctx.factory() as session:
        assert ctx.subscriptions.target_of(session.get(AlertSubscription, view.id)).address == url
    ctx.subscriptions.delete(member, view.id)
    assert ctx.subscriptions.list(member) == []


def test_a_person_pausing_or_resuming_alerts_nobody(ctx, owner):
    clock = Clock()
    pipeline = make_pipeline(ctx, clock)
    integration_id = add_integration(ctx, owner, "Paused by hand")
    change(ctx, integration_id, "paused", clock.now, "Paused by olga.", check_class=None)
    assert pipeline.process_changes() == []
