"""Errors the services raise: one family under ConsoleError.

Every error a person can see derives from ConsoleError, whose message (``str(error)``, also
``error.message``) is a sentence a person can act on, with no secret and no raw driver or server text in
it. Pages, ui/ and the CLI catch ConsoleError and show that sentence; an error that may carry a secret or
a driver's words (SQLAlchemyError, requests' exceptions, oauth.TokenError) is not a ConsoleError and is
turned into one, or into a result, by the service that meets it.

The shared errors are defined here; a module's own error (ChatwootError, HelpdeskError, RateLimitedError,
SettingsError, RotationInterrupted, ...) stays in its module and derives from ConsoleError.
"""

from datetime import datetime


class ConsoleError(Exception):
    """A service refused or failed an action; ``str(error)`` is the sentence to show, safe as it is."""

    def __init__(self, message: str):
        super().__init__(message)

    @property
    def message(self) -> str:
        """The sentence to show a person: the same as ``str(error)``."""
        return str(self)


class TierLimitError(ConsoleError):
    """An action is over the user's tier; the message names the tier that allows it."""


class NotFoundError(ConsoleError):
    """The record does not exist, or belongs to someone the actor may not see."""


class PermissionDeniedError(ConsoleError):
    """The actor may not do this; the message says who may."""


class ConflictError(ConsoleError):
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


class ValidationError(ConsoleError):
    def __init__(self, errors: dict[str, str], message: str | None = None):
        self.errors = errors
        super().__init__(message or "Some fields need attention: " + "; ".join(errors.values()))


class StorageError(ConsoleError):
    """The database refused or failed a write; nothing was changed."""


class KeyMismatchError(ConsoleError):
    """The encryption key ring does not open this database's values."""


class DatabaseBusyError(StorageError):
    """Another process holds the database's write lock longer than the busy timeout (SQLite)."""

    MESSAGE = "The database is busy with another change right now, so nothing was done. Try again in a moment."

    def __init__(self, message: str = MESSAGE):
        super().__init__(message)
