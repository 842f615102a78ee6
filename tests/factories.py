"""Rows written straight into the test database, for tests about reading and counting (no service rules;
configurations are empty, or sealed as given by add_sealed_integration)."""

from __future__ import annotations

from datetime import datetime

from core.integrations.configuration import Configurations
from core.models import AuditEvent, Integration, utcnow
from providers import CATALOG


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


def add_check_record(
    ctx,
    integration_id: int,
    at: datetime | None = None,
    success: bool = True,
    latency_ms: int | None = 100,
    check_class: str | None = None,
    http_status: int | None = None,
    code: str | None = None,
    message: str = "",
    trigger: str = "schedule",
) -> None:
    """A stored check, as core.integrations.checks writes one per check (message already redacted)."""
    add_check_records(
        ctx,
        [
            dict(
                integration_id=integration_id,
                at=at or utcnow(),
                success=success,
                latency_ms=latency_ms,
                check_class=check_class or ("ok" if success else "network"),
                http_status=http_status,
                code=code,
                message=message,
                trigger=trigger,
            )
        ],
    )


def add_check_records(ctx, rows: list[dict]) -> None:
    """Many stored checks in one INSERT (keys as CheckRecord's columns)."""
    from sqlalchemy import insert

    from core.models import CheckRecord

    defaults = dict(latency_ms=None, http_status=None, code=None, message="", trigger="schedule", run_id=None)
    with ctx.factory.begin() as session:
        session.execute(
            insert(CheckRecord),
            [{**defaults, "check_class": "ok" if r.get("success", True) else "network", **r} for r in rows],
        )


def add_sealed_integration(ctx, owner, provider_key: str, plain: dict, name: str = "Stored earlier") -> int:
    """An integration whose configuration is written as given, its secrets sealed through the configuration
    layer (core.integrations.configuration.Configurations.seal) but none of today's checks or normalisation:
    a row as an older form stored it (the Custom CRM's one Credentials JSON)."""
    provider = CATALOG.get(provider_key)
    with ctx.factory.begin() as session:
        row = Integration(owner_id=owner.id, name=name, type=provider.category, provider=provider_key, configuration={})
        session.add(row)
        session.flush()
        row.configuration = Configurations(ctx.cipher).seal(provider, plain, None, row.id)
        return row.id
