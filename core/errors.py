"""Errors the services raise. Every message is a sentence a person can act on, with no secret in it."""

from datetime import datetime

from core.tiers import TierLimitError  # noqa: F401 - re-exported for callers


class NotFoundError(Exception):
    """The record does not exist, or belongs to someone the actor may not see."""


class PermissionDeniedError(Exception):
    pass


class ConflictError(Exception):
    """Someone else changed the record since it was loaded.

    ``changed_by`` (a user name, or None when unknown) and ``changed_at`` (naive UTC, or None) say who
    made the change that won, so a page can name them; build one with ``conflict()``.
    """

    def __init__(self, message: str, changed_by: str | None = None, changed_at: datetime | None = None):
        self.changed_by = changed_by
        self.changed_at = changed_at
        super().__init__(message)


def conflict(what: str, changed_by: str | None, changed_at: datetime | None) -> ConflictError:
    """The refusal of a stale save: "bob changed this integration at 2026-05-01 09:30:12 UTC, after you
    opened it, so your changes were not saved. Reload their version, then apply yours again."."""
    who = changed_by or "Someone else"
    when = f" at {changed_at:%Y-%m-%d %H:%M:%S} UTC" if changed_at else ""
    return ConflictError(
        f"{who} changed {what}{when}, after you opened it, so your changes were not saved. "
        "Reload their version, then apply yours again.",
        changed_by,
        changed_at,
    )


class ValidationError(Exception):
    def __init__(self, errors: dict[str, str], message: str | None = None):
        self.errors = errors
        super().__init__(message or "Some fields need attention: " + "; ".join(errors.values()))


class StorageError(Exception):
    """The database refused or failed a write; nothing was changed."""


class KeyMismatchError(Exception):
    """The encryption key ring does not open this database's values."""


class DatabaseBusyError(StorageError):
    """Another process holds the database's write lock longer than the busy timeout (SQLite)."""

    MESSAGE = "The database is busy with another change right now, so nothing was done. Try again in a moment."

    def __init__(self, message: str = MESSAGE):
        super().__init__(message)
