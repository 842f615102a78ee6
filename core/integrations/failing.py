"""Integrations whose last check failed, grouped by cause (core.integrations.classify), for the failing lists
of Overview and Statistics: each group says what happened and what to do, once, above its integrations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Select
from sqlalchemy.orm import Session

from core.integrations.classify import CLASS_TEXT, CheckClass
from core.models import Integration

UNCLASSIFIED = ("The last check failed.", "Open the integration to read its message, then test it again.")
# Causes a person acts on first: a refused credential before a network problem before a slow service.
ORDER = (
    CheckClass.AUTH,
    CheckClass.PERMISSION,
    CheckClass.CONFIGURATION,
    CheckClass.NETWORK,
    CheckClass.TLS,
    CheckClass.TIMEOUT,
    CheckClass.RATE_LIMITED,
    CheckClass.PROVIDER_ERROR,
    CheckClass.OK,
)
LABELS = {
    CheckClass.AUTH: "Credentials refused",
    CheckClass.PERMISSION: "Missing permission",
    CheckClass.CONFIGURATION: "Settings to correct",
    CheckClass.NETWORK: "Not reachable",
    CheckClass.TLS: "Secure connection failed",
    CheckClass.TIMEOUT: "No answer in time",
    CheckClass.RATE_LIMITED: "Too many requests",
    CheckClass.PROVIDER_ERROR: "The service's own problem",
    CheckClass.OK: "Passed since",
}


class HasCause(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def check_class(self) -> str | None: ...


@dataclass(frozen=True)
class FailingRow:
    id: int
    name: str
    provider_name: str
    owner: str
    message: str
    last_checked_at: datetime | None
    check_class: str | None


@dataclass(frozen=True)
class Cause:
    """One group: its label ("Credentials refused"), what happened, what to do, and its integrations."""

    check_class: CheckClass | None
    label: str
    sentence: str
    next_step: str
    rows: tuple


def by_cause(rows: Iterable[HasCause]) -> list[Cause]:
    """The rows grouped by the class of their last check, in ORDER, rows kept in their given order;
    a class this version does not know, or none stored, goes last as "Other"."""
    groups: dict[CheckClass | None, list] = {}
    for row in rows:
        try:
            key: CheckClass | None = CheckClass(row.check_class) if row.check_class else None
        except ValueError:
            key = None
        groups.setdefault(key, []).append(row)
    causes = []
    for key in (*ORDER, None):
        if key not in groups:
            continue
        sentence, next_step = CLASS_TEXT[key] if key is not None else UNCLASSIFIED
        causes.append(Cause(key, LABELS[key] if key is not None else "Other", sentence, next_step, tuple(groups[key])))
    return causes


def cause_label(check_class: str | None) -> str:
    """The label of a stored class ("auth" -> "Credentials refused"), "Other" when unknown."""
    try:
        return LABELS[CheckClass(check_class)] if check_class else "Other"
    except ValueError:
        return "Other"


__all__: Sequence[str] = ["Cause", "FailingRow", "by_cause", "cause_label"]


def newest_checked_first(session: Session, query: Select, limit: int) -> list:
    """The rows of ``query`` (over integrations) most recently checked first, never-checked ones last, then
    by id, newest first: at most ``limit``.

    Two reads, not one ORDER BY last_checked_at DESC NULLS LAST: PostgreSQL's index on (status,
    last_checked_at) read backwards gives NULLS FIRST, so that order sorted every failing integration of
    every tenant (254 ms at a million); with the NULLs left out it reads the newest straight from the index
    (0.4 ms). Never-checked rows are read only when the checked ones do not fill the page.
    """
    checked = (
        query.where(Integration.last_checked_at.is_not(None))
        .order_by(Integration.last_checked_at.desc(), Integration.id.desc())
        .limit(limit)
    )
    rows = list(session.execute(checked))
    if len(rows) < limit:
        never = query.where(Integration.last_checked_at.is_(None)).order_by(Integration.id.desc())
        rows += session.execute(never.limit(limit - len(rows)))
    return rows
