"""Audit events: who did what to which integration, when, with what outcome. Never a secret."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, insert, or_, select, true
from sqlalchemy.orm import Session, sessionmaker

from core import csvsafe
from core.models import AuditEvent, Integration, utcnow

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


def record_many(session: Session, actor: Actor | None, events: list[tuple[str, str, int | None, dict]]) -> None:
    """Add many events (action, outcome, integration id, details) in one multi-row INSERT: a check-all
    writes hundreds at once, and ORM objects for each would hold the interpreter far longer."""
    if not events:
        return
    now = utcnow()
    session.execute(
        insert(AuditEvent),
        [
            {
                "at": now,
                "actor_id": actor.id if actor else None,
                "actor": actor.username if actor else "system",
                "action": action,
                "outcome": outcome,
                "integration_id": integration_id,
                "details": _bounded(details),
            }
            for action, outcome, integration_id, details in events
        ],
    )


def record_now(factory: sessionmaker, actor: Actor | None, action: str, outcome: str, **kwargs) -> None:
    """Record an event in its own transaction (for failures whose main transaction rolled back)."""
    with factory.begin() as session:
        record(session, actor, action, outcome, **kwargs)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    integration_id: int | None
    outcome: str
    details: dict


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    integration_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500


MAX_ROWS = 5000


def _visible(actor: Actor):
    """Members see what they did and what happened to their integrations; administrators see all."""
    if actor.is_admin:
        return true()
    owned = select(Integration.id).where(Integration.owner_id == actor.id)
    return or_(AuditEvent.actor_id == actor.id, AuditEvent.integration_id.in_(owned))


def search(factory: sessionmaker, actor: Actor, wanted: AuditFilter = AuditFilter()) -> list[AuditView]:
    """Newest first, filtered, at most `limit` (capped at MAX_ROWS) rows."""
    query = select(AuditEvent).where(_visible(actor)).order_by(AuditEvent.id.desc())
    query = query.limit(max(1, min(wanted.limit, MAX_ROWS)))
    if wanted.actor is not None:
        query = query.where(AuditEvent.actor == wanted.actor)
    if wanted.integration_id is not None:
        query = query.where(AuditEvent.integration_id == wanted.integration_id)
    if wanted.action is not None:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.since is not None:
        query = query.where(AuditEvent.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEvent.at < wanted.until)
    with factory() as session:
        return [
            AuditView(e.id, e.at, e.actor, e.action, e.integration_id, e.outcome, dict(e.details or {}))
            for e in session.scalars(query)
        ]


def choices(factory: sessionmaker, actor: Actor) -> tuple[list[str], list[str]]:
    """The actors and actions the actor may filter by."""
    with factory() as session:
        actors = session.scalars(select(AuditEvent.actor).where(_visible(actor)).distinct().order_by(AuditEvent.actor))
        actions = session.scalars(
            select(AuditEvent.action).where(_visible(actor)).distinct().order_by(AuditEvent.action)
        )
        return list(actors), list(actions)


def to_csv(events: list[AuditView]) -> str:
    """A CSV of events; details are already free of secrets, written as JSON."""
    return csvsafe.to_csv(
        ["id", "at (UTC)", "who", "action", "integration", "outcome", "details"],
        (
            [
                e.id,
                e.at.isoformat(sep=" ", timespec="seconds"),
                e.actor,
                e.action,
                e.integration_id or "",
                e.outcome,
                json.dumps(e.details, sort_keys=True, default=str),
            ]
            for e in events
        ),
    )


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target) -> None:
    raise PermissionError("Audit events are append-only: they are never changed or deleted by the app.")
