"""Audit events: who did what to which integration, when, with what outcome. Never a secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import AuditEvent

MAX_DETAIL_TEXT = 500


@dataclass(frozen=True)
class Actor:
    """The signed-in person (or the CLI acting as one) on whose behalf a service call runs."""

    id: int
    username: str
    role: str
    tier: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _bounded(details: dict) -> dict:
    clean = {}
    for key, value in details.items():
        if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
            value = value[:MAX_DETAIL_TEXT] + "…"
        clean[key] = value
    return clean


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    outcome: str,
    integration_id: int | None = None,
    details: dict | None = None,
) -> None:
    """Add an event to the caller's transaction. Callers pass only non-sensitive details."""
    session.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            actor=actor.username if actor else "system",
            action=action,
            outcome=outcome,
            integration_id=integration_id,
            details=_bounded(details or {}),
        )
    )


def record_now(factory: sessionmaker, actor: Actor | None, action: str, outcome: str, **kwargs) -> None:
    """Record an event in its own transaction (for failures whose main transaction rolled back)."""
    with factory.begin() as session:
        record(session, actor, action, outcome, **kwargs)


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    integration_id: int | None
    outcome: str
    details: dict


def recent(factory: sessionmaker, actor: Actor, limit: int = 50, integration_id: int | None = None) -> list[AuditView]:
    """Newest events first; members see only their own."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if not actor.is_admin:
        query = query.where(AuditEvent.actor_id == actor.id)
    if integration_id is not None:
        query = query.where(AuditEvent.integration_id == integration_id)
    with factory() as session:
        return [
            AuditView(e.at, e.actor, e.action, e.integration_id, e.outcome, dict(e.details or {}))
            for e in session.scalars(query)
        ]
