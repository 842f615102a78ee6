"""Shared by the alert tests: a clock the test moves, a pipeline wired to 127.0.0.1, health changes as the
engine writes them (the integration's new health and its HealthChange row, in one transaction)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select

from core.alerts.pipeline import AlertPipeline
from core.http import HttpPolicy, make_session
from core.models import AlertDelivery, AuditEvent, HealthChange, Integration
from providers import CATALOG
from tests.conftest import LOOPBACK_ALLOW, make_settings


class Clock:
    def __init__(self, start: datetime = datetime(2026, 12, 1, 9, 0, 0)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_pipeline(ctx, clock: Clock, **settings) -> AlertPipeline:
    values = {"alert_group_window_seconds": 120, "alert_incident_threshold": 5, "alert_max_attempts": 6} | settings
    configured = make_settings(ctx.settings.database_url, **values)
    http = partial(make_session, HttpPolicy(2, 2, 0, outbound_allow=LOOPBACK_ALLOW))
    return AlertPipeline(ctx.factory, ctx.cipher, configured, http, clock=clock, catalog=CATALOG)


def add_integration(ctx, owner, name: str, provider: str = "HUBSPOT", health: str = "connected", **config) -> int:
    with ctx.factory.begin() as session:
        row = Integration(
            owner_id=owner.id, name=name, type="CRM", provider=provider, configuration=config, health=health
        )
        session.add(row)
        session.flush()
        return row.id


def change(
    ctx,
    integration_id: int,
    new: str,
    at: datetime,
    message: str = "The service answered 503.",
    check_class: str | None = "provider_error",
) -> int:
    """What the engine does on a health change: the new state and its outbox row, together."""
    with ctx.factory.begin() as session:
        row = session.get(Integration, integration_id)
        old = row.health
        row.health, row.health_changed_at = new, at
        if new == "paused":
            row.is_active = False
        change = HealthChange(
            integration_id=integration_id, at=at, old=old, new=new, message=message, check_class=check_class
        )
        session.add(change)
        session.flush()
        return change.id


def deliveries(ctx) -> list[AlertDelivery]:
    with ctx.factory() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def audit_rows(ctx, action: str) -> list[AuditEvent]:
    with ctx.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def deliver_due(pipeline: AlertPipeline, clock: Clock) -> dict[str, int]:
    """Deliver everything due now; how many ended in each outcome."""
    counts: dict[str, int] = {}
    for delivery_id in pipeline.due(clock(), 1000):
        status = pipeline.deliver(delivery_id).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def posted(httpserver, path: str) -> list[dict]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.path == path]
