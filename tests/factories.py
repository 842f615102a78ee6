"""Rows written straight into the test database, for tests about reading and counting (no service rules,
no encryption: configurations are empty)."""

from __future__ import annotations

from datetime import datetime

from core.models import AuditEvent, Integration, utcnow


def add_integration(
    ctx,
    owner,
    name: str = "i",
    provider: str = "CHATWOOT",
    kind: str = "CRM",
    status: str = "unknown",
    active: bool = True,
    checked: datetime | None = None,
    message: str | None = None,
    created: datetime | None = None,
) -> int:
    with ctx.factory.begin() as session:
        row = Integration(
            owner_id=owner.id,
            name=name,
            type=kind,
            provider=provider,
            configuration={},
            is_active=active,
            status=status,
            status_message=message,
            last_checked_at=checked,
            created_at=created or utcnow(),
        )
        session.add(row)
        session.flush()
        return row.id


def add_check(
    ctx,
    integration_id: int | None,
    at: datetime | None = None,
    outcome: str = "success",
    action: str = "integration.test",
) -> None:
    """An audit event, by default an "integration.test" as a connection test or check all writes it."""
    with ctx.factory.begin() as session:
        session.add(
            AuditEvent(
                at=at or utcnow(),
                actor="monitor",
                action=action,
                outcome=outcome,
                integration_id=integration_id,
                details={},
            )
        )
