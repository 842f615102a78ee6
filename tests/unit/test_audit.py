"""The activity log: who sees what, filters, CSV, and append-only events."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import audit
from core.models import AuditEvent, utcnow

TOKEN = "audit-canary-token-12345"
CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": TOKEN}


def test_members_see_their_own_actions_and_events_on_their_integrations(ctx, member, other_member, admin):
    mine = ctx.integrations.create(member, "Mine", "CHATWOOT", CONFIG)
    ctx.integrations.create(other_member, "Theirs", "CHATWOOT", CONFIG)
    ctx.integrations.set_active(admin, mine.id, False)  # an administrator acting on alice's integration

    seen = audit.search(ctx.factory, member)
    assert {(e.actor, e.action) for e in seen} == {("alice", "integration.create"), ("root", "integration.pause")}
    assert len(audit.search(ctx.factory, admin)) >= 3
    actors, actions = audit.choices(ctx.factory, member)
    assert "bob" not in actors and "integration.pause" in actions


def test_filters_narrow_by_actor_action_integration_and_time(ctx, member, admin):
    first = ctx.integrations.create(member, "First", "CHATWOOT", CONFIG)
    second = ctx.integrations.create(member, "Second", "CHATWOOT", CONFIG)
    ctx.integrations.set_active(member, second.id, False)

    def ids(**wanted):
        return [(e.action, e.integration_id) for e in audit.search(ctx.factory, admin, audit.AuditFilter(**wanted))]

    assert ids(integration_id=first.id) == [("integration.create", first.id)]
    assert ids(action="integration.pause") == [("integration.pause", second.id)]
    assert ids(actor="root") == []
    assert ids(since=utcnow() + timedelta(minutes=1)) == []
    assert len(ids(until=utcnow() + timedelta(minutes=1))) == 5  # two user.create events from the fixtures too
    assert len(ids(limit=1)) == 1


def test_csv_lists_every_event_without_secrets(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", CONFIG)
    ctx.integrations.update(member, view.id, view.version, configuration={**CONFIG, "apiKey": TOKEN + "-new"})
    text = audit.to_csv(audit.search(ctx.factory, member))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["id", "at (UTC)", "who", "action"]
    assert [r[3] for r in rows[1:]] == ["integration.update", "integration.create"]
    assert TOKEN not in text


def test_events_cannot_be_changed_or_deleted_through_the_app(ctx, member):
    ctx.integrations.create(member, "Desk", "CHATWOOT", CONFIG)
    with ctx.factory() as session:
        event = session.scalars(select(AuditEvent)).first()
        event.outcome = "failure"
        with pytest.raises(PermissionError):
            session.flush()
        session.rollback()
        event = session.scalars(select(AuditEvent)).first()
        session.delete(event)
        with pytest.raises(PermissionError):
            session.flush()
