"""Errors the services raise. Every message is a sentence a person can act on, with no secret in it."""

from core.tiers import TierLimitError  # noqa: F401 - re-exported for callers


class NotFoundError(Exception):
    """The record does not exist, or belongs to someone the actor may not see."""


class PermissionDeniedError(Exception):
    pass


class ConflictError(Exception):
    """Someone else changed the record since it was loaded."""


class ValidationError(Exception):
    def __init__(self, errors: dict[str, str], message: str | None = None):
        self.errors = errors
        super().__init__(message or "Some fields need attention: " + "; ".join(errors.values()))


class StorageError(Exception):
    """The database refused or failed a write; nothing was changed."""


class DatabaseBusyError(StorageError):
    """Another process holds the database's write lock longer than the busy timeout (SQLite)."""

    MESSAGE = "The database is busy with another change right now, so nothing was done. Try again in a moment."

    def __init__(self, message: str = MESSAGE):
        super().__init__(message)
