"""IntegrationService.detail, pause and resume, health counts and the health filter, and the edit audit's
old -> new values (a secret only as "changed")."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import NotFoundError
from core.fields import MASK
from core.integrations.health import MEANING, Health
from core.integrations.service import ListQuery
from core.models import AuditEvent, HealthChange, Integration, utcnow
from tests.factories import add_check_record, add_check_records, add_integration

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

TOKEN = "cw-detail-token-canary-0001"
TOKEN_2 = "cw-detail-token-canary-0002"


def chatwoot(**changes) -> dict:
    return {"baseUrl": "https://chat.example.com", "accountId": "7", "apiKey": TOKEN, **changes}


def stored(ctx, integration_id):
    with ctx.factory() as session:
        return session.scalar(select(Integration).where(Integration.id == integration_id))


def events(ctx, action):
    with ctx.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_detail_has_masked_configuration_health_metrics_checks_and_activity(ctx, member):
    view = ctx.integrations.create(member, "Acme desk", "CHATWOOT", chatwoot())
    now = utcnow()
    add_check_records(
        ctx,
        [
            dict(integration_id=view.id, at=now - timedelta(days=d, minutes=1), success=d != 3, latency_ms=100 + d)
            for d in range(10)
        ],
    )
    add_check_record(ctx, view.id, now - timedelta(seconds=5), success=False, http_status=401, message="Refused")
    with ctx.factory.begin() as session:
        session.get_one(Integration, view.id).health = "needs_reconnect"

    detail = ctx.integrations.detail(member, view.id)
    assert detail.view.configuration["apiKey"] == MASK
    assert TOKEN not in json.dumps(detail.view.configuration)
    assert detail.view.owner == "alice"
    assert detail.health is Health.NEEDS_RECONNECT
    assert (detail.sentence, detail.next_step) == MEANING[Health.NEEDS_RECONNECT]
    assert detail.uptime_7 == pytest.approx(6 / 8)  # days 0..6, day 3 failed, and the failure just now
    assert detail.uptime_30 == pytest.approx(9 / 11)
    assert detail.p50_ms is not None and detail.p95_ms == 109
    assert len(detail.daily) == 30 and sum(p.checks for p in detail.daily) == 11
    assert len(detail.checks) == 11 and detail.checks[0].status_or_code == "HTTP 401"
    assert [a.label for a in detail.activity] == ["Created"]


def test_detail_of_someone_elses_integration_reads_like_a_missing_one(ctx, admin, member, other_member):
    view = ctx.integrations.create(member, "Alice's desk", "CHATWOOT", chatwoot())
    with pytest.raises(NotFoundError) as theirs:
        ctx.integrations.detail(other_member, view.id)
    with pytest.raises(NotFoundError) as missing:
        ctx.integrations.detail(other_member, view.id + 1000)
    assert str(theirs.value) == str(missing.value).replace(str(view.id + 1000), str(view.id))
    assert ctx.integrations.detail(admin, view.id).view.owner == "alice"  # administrators see every one


def test_an_edit_records_old_and_new_values_and_a_secret_only_as_changed(ctx, member):
    view = ctx.integrations.create(member, "Acme desk", "CHATWOOT", chatwoot())
    ctx.integrations.update(
        member, view.id, view.version, name="Acme support", configuration=chatwoot(accountId="8", apiKey=TOKEN_2)
    )
    [event] = events(ctx, "integration.update")
    assert TOKEN not in json.dumps(event.details) and TOKEN_2 not in json.dumps(event.details)
    assert "ENC" not in json.dumps(event.details)  # not even the ciphertext
    assert event.details["fields"] == ["name", "accountId", "apiKey"]
    assert event.details["changes"] == [
        {"field": "name", "old": "Acme desk", "new": "Acme support"},
        {"field": "accountId", "old": "7", "new": "8"},
        {"field": "apiKey", "secret": True},
    ]
    [edited, _created] = ctx.integrations.detail(member, view.id).activity
    assert edited.label == "Edited"
    assert [c.text() for c in edited.changes] == [
        "name: Acme desk → Acme support",
        "accountId: 7 → 8",
        "apiKey: changed",
    ]
    assert edited.summary == "name: Acme desk → Acme support; accountId: 7 → 8; apiKey: changed"


def test_an_edit_audited_before_values_were_kept_still_reads(ctx, member):
    integration_id = add_integration(ctx, member, "Old")
    with ctx.factory.begin() as session:
        session.add(
            AuditEvent(
                actor="alice",
                action="integration.update",
                outcome="success",
                integration_id=integration_id,
                details={"fields": ["name", "apiKey"]},
            )
        )
    [entry] = ctx.integrations.detail(member, integration_id).activity
    assert (entry.label, entry.summary, entry.changes) == ("Edited", "changed name, apiKey", ())


def test_activity_of_a_test_shows_its_message(ctx, member):
    integration_id = add_integration(ctx, member, "Tested")
    with ctx.factory.begin() as session:
        session.add(
            AuditEvent(
                actor="alice",
                action="integration.test",
                outcome="failure",
                integration_id=integration_id,
                details={"provider": "CHATWOOT", "message": "The server refused the token."},
            )
        )
    [entry] = ctx.integrations.detail(member, integration_id).activity
    assert (entry.label, entry.outcome, entry.summary) == ("Tested", "failure", "The server refused the token.")


def test_pause_and_resume_move_health_and_schedule_with_audit(ctx, member, other_member):
    view = ctx.integrations.create(member, "Acme desk", "CHATWOOT", chatwoot())
    with ctx.factory.begin() as session:
        row = session.get_one(Integration, view.id)
        row.health, row.failures_in_row, row.failing_since = "failing", 5, utcnow() - timedelta(hours=2)
    version = stored(ctx, view.id).version

    paused = ctx.integrations.pause(member, view.id)
    assert (paused.is_active, paused.health) == (False, "paused")
    assert ctx.integrations.pause(member, view.id).health == "paused"  # a second pause changes nothing
    assert len(events(ctx, "integration.pause")) == 1

    before = utcnow()
    resumed = ctx.integrations.resume(member, view.id)
    row = stored(ctx, view.id)
    assert (resumed.is_active, resumed.health) == (True, "unknown")
    assert (row.failures_in_row, row.successes_in_row, row.failing_since) == (0, 0, None)
    assert row.next_check_at is not None and row.next_check_at >= before - timedelta(seconds=1)
    assert row.version == version  # not an edit: an open edit dialog still saves
    assert len(events(ctx, "integration.resume")) == 1
    with ctx.factory() as session:
        changes = [(c.old, c.new) for c in session.scalars(select(HealthChange).order_by(HealthChange.id))]
    assert changes == [("failing", "paused"), ("paused", "unknown")]

    with pytest.raises(NotFoundError):
        ctx.integrations.pause(other_member, view.id)
    with pytest.raises(NotFoundError):
        ctx.integrations.resume(other_member, view.id)
    assert stored(ctx, view.id).is_active


def test_an_edit_after_a_pause_is_still_saved(ctx, member):
    view = ctx.integrations.create(member, "Acme desk", "CHATWOOT", chatwoot())
    ctx.integrations.pause(member, view.id)
    saved = ctx.integrations.update(member, view.id, view.version, name="Renamed")
    assert (saved.name, saved.health, saved.is_active) == ("Renamed", "paused", False)


def test_health_counts_and_the_health_filter(ctx, member, other_member):
    ids = [add_integration(ctx, member, f"m{n}") for n in range(4)]
    theirs = add_integration(ctx, other_member, "theirs")
    with ctx.factory.begin() as session:
        states = ["failing", "failing", "connected", "unknown", "failing"]
        for integration_id, health in zip([*ids, theirs], states, strict=True):
            session.get_one(Integration, integration_id).health = health
    counts = ctx.integrations.health_counts(member)
    assert counts["failing"] == 2 and counts["connected"] == 1 and counts["unknown"] == 1
    assert counts["paused"] == 0 and set(counts) == {h.value for h in Health}
    page = ctx.integrations.page(member, ListQuery(health="failing"))
    assert page.total == 2 and {v.id for v in page.views} == set(ids[:2])
    assert all(v.health == "failing" for v in page.views)
