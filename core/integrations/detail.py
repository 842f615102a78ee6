"""One integration's page: its masked configuration, health with what it means, uptime, latency, the daily
series, the last checks, and its activity with what each edit changed (a secret only as "changed").

IntegrationService.detail builds it after its ownership check; nothing here reads an integration itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.audit import AuditView
from core.integrations.health import MEANING, Health
from core.integrations.history import CheckView, DayPoint, HistoryService

if TYPE_CHECKING:
    from core.integrations.service import IntegrationView

RECENT_CHECKS = 50
ACTIVITY_ROWS = 50
CHART_DAYS = 30

ACTIONS = {
    "integration.create": "Created",
    "integration.update": "Edited",
    "integration.test": "Tested",
    "integration.activate": "Activated",
    "integration.deactivate": "Deactivated",
    "integration.pause": "Paused",
    "integration.resume": "Resumed",
    "integration.health_changed": "Health changed",
    "integration.token_refreshed": "Token refreshed",
    "integration.delete": "Deleted",
}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: object = None
    new: object = None
    secret: bool = False  # a secret's values are never recorded: it says only "changed"

    def text(self) -> str:
        if self.secret:
            return f"{self.field}: changed"
        return f"{self.field}: {_shown(self.old)} → {_shown(self.new)}"


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(empty)"
    return str(value)


@dataclass(frozen=True)
class ActivityEntry:
    at: datetime
    actor: str
    action: str
    label: str  # "Edited", "Tested", ...
    outcome: str
    summary: str  # what a person reads: the changes, the test's message, or the field names of an old edit
    changes: tuple[FieldChange, ...] = ()


def activity_entry(event: AuditView) -> ActivityEntry:
    details = event.details or {}
    changes: tuple[FieldChange, ...] = ()
    if event.action == "integration.update" and isinstance(details.get("changes"), list):
        changes = tuple(
            FieldChange(str(c.get("field", "?")), secret=True)
            if c.get("secret")
            else FieldChange(str(c.get("field", "?")), c.get("old"), c.get("new"))
            for c in details["changes"]
            if isinstance(c, dict)
        )
        summary = "; ".join(c.text() for c in changes)
    elif event.action == "integration.update":  # recorded before edits kept their values: names only
        summary = "changed " + ", ".join(str(f) for f in details.get("fields", [])) if details.get("fields") else ""
    elif "message" in details:
        summary = str(details["message"])
    elif "reason" in details:
        summary = str(details["reason"])
    else:
        summary = ""
    label = ACTIONS.get(event.action, event.action)
    return ActivityEntry(event.at, event.actor, event.action, label, event.outcome, summary, changes)


@dataclass(frozen=True)
class IntegrationDetail:
    view: IntegrationView  # the masked configuration, owner and status
    health: Health
    sentence: str  # what the state means
    next_step: str  # what the person can do
    health_changed_at: datetime | None
    failures_in_row: int
    failing_since: datetime | None
    next_check_at: datetime | None
    uptime_7: float | None
    uptime_30: float | None
    p50_ms: int | None
    p95_ms: int | None
    daily: tuple[DayPoint, ...]
    checks: tuple[CheckView, ...]
    activity: tuple[ActivityEntry, ...]
    retention_days: int


@dataclass(frozen=True)
class CheckSummary:
    """The last checks of one integration and its figures, for the command line."""

    view: IntegrationView
    health: Health
    checks: tuple[CheckView, ...]
    uptime_7: float | None
    uptime_30: float | None
    p50_ms: int | None
    p95_ms: int | None


def build(
    view: IntegrationView, row_health: dict, history: HistoryService, events: list[AuditView], now: datetime
) -> IntegrationDetail:
    """The page's content for an integration the caller may see (its row's health columns in row_health)."""
    health = Health.parse(row_health.get("health"))
    sentence, next_step = MEANING[health]
    p50, p95 = history.latency(view.id, 30, now)
    return IntegrationDetail(
        view=view,
        health=health,
        sentence=sentence,
        next_step=next_step,
        health_changed_at=row_health.get("health_changed_at"),
        failures_in_row=int(row_health.get("failures_in_row") or 0),
        failing_since=row_health.get("failing_since"),
        next_check_at=row_health.get("next_check_at"),
        uptime_7=history.uptime(view.id, 7, now),
        uptime_30=history.uptime(view.id, 30, now),
        p50_ms=p50,
        p95_ms=p95,
        daily=tuple(history.daily(view.id, CHART_DAYS, now)),
        checks=tuple(history.recent(view.id, RECENT_CHECKS)),
        activity=tuple(activity_entry(e) for e in events),
        retention_days=history.retention_days,
    )


__all__ = [
    "ACTIONS",
    "ActivityEntry",
    "CheckSummary",
    "FieldChange",
    "IntegrationDetail",
    "activity_entry",
    "build",
]
