"""The errors of a contact sync: each a sentence a person can act on, no secret in it."""

from __future__ import annotations

from core.errors import ConsoleError


class SyncSideError(ConsoleError):
    """One side of a sync refused or failed a request (its message says which side and what to do).

    per_item: the side refused this contact's data (400, 409, 422), not the sync: the run counts it as
    failed and goes on; any other failure ends the run where it is (it resumes there next time)."""

    def __init__(self, message: str, per_item: bool = False):
        self.per_item = per_item
        super().__init__(message)
