"""Health states of an integration, and the one rule that moves them (documented in the README, "Health").

    connected --fail--> degraded --N fails in a row, or failing for T--> failing --failing for D and M fails--> paused
    any state --a refused credential (401, invalid_grant, bad database password)--> needs_reconnect
    degraded / failing / needs_reconnect --K successes in a row--> connected

Paused integrations are not scheduled (an automatic pause sets is_active off); a manual test is always
possible and a success moves a paused integration back only when a person resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Health(StrEnum):
    UNKNOWN = "unknown"  # never checked
    CONNECTED = "connected"
    DEGRADED = "degraded"
    FAILING = "failing"
    PAUSED = "paused"
    NEEDS_RECONNECT = "needs_reconnect"

    @property
    def label(self) -> str:
        return LABELS[self]

    @classmethod
    def parse(cls, value: str | None) -> Health:
        """A stored value; anything unknown reads as UNKNOWN."""
        try:
            return cls(value or "unknown")
        except ValueError:
            return cls.UNKNOWN


LABELS: dict[Health, str] = {
    Health.UNKNOWN: "Not checked yet",
    Health.CONNECTED: "Connected",
    Health.DEGRADED: "Degraded",
    Health.FAILING: "Failing",
    Health.PAUSED: "Paused",
    Health.NEEDS_RECONNECT: "Needs reconnect",
}

# What each state means to the person looking at it, and what they can do.
MEANING: dict[Health, tuple[str, str]] = {
    Health.UNKNOWN: ("It has not been checked yet.", "Test it now, or wait for its first scheduled check."),
    Health.CONNECTED: ("Its last checks succeeded.", "Nothing to do."),
    Health.DEGRADED: (
        "Its last check failed, but not often enough in a row to call it failing.",
        "Look at the last check's message; it often recovers by itself.",
    ),
    Health.FAILING: (
        "It has failed several checks in a row.",
        "Fix what the last check's message names, then test it again.",
    ),
    Health.PAUSED: (
        "It is not checked on a schedule: paused by a person, or automatically after failing for days.",
        "Fix the cause, then resume it.",
    ),
    Health.NEEDS_RECONNECT: (
        "The service refused its credentials.",
        "Reconnect it or enter new credentials, then test again.",
    ),
}

# Worse to better, for "did it get worse": an alert on each worsening, one on recovery.
SEVERITY: dict[Health, int] = {
    Health.CONNECTED: 0,
    Health.UNKNOWN: 0,
    Health.DEGRADED: 1,
    Health.FAILING: 2,
    Health.NEEDS_RECONNECT: 3,
    Health.PAUSED: 3,
}


@dataclass(frozen=True)
class HealthPolicy:
    """The thresholds, set by HEALTH_* settings (core.settings). Defaults follow Airbyte's: failing after 3
    in a row or an hour, paused after 7 days and 30 failures."""

    failing_after_checks: int = 3  # N
    failing_after: timedelta = timedelta(hours=1)  # T
    pause_after: timedelta = timedelta(days=7)  # D
    pause_after_checks: int = 30
    recover_after_checks: int = 1  # K


@dataclass(frozen=True)
class Streak:
    """What a check leaves on the integration row."""

    health: Health
    failures_in_row: int
    successes_in_row: int
    failing_since: datetime | None

    @property
    def paused_now(self) -> bool:
        return self.health is Health.PAUSED


def after_check(before: Streak, success: bool, refused_credential: bool, now: datetime, policy: HealthPolicy) -> Streak:
    """The streak and state after one check's outcome."""
    if success:
        successes = before.successes_in_row + 1
        if before.health is Health.PAUSED:  # a manual test of a paused integration does not resume it
            return Streak(Health.PAUSED, 0, successes, None)
        recovered = before.health in (Health.CONNECTED, Health.UNKNOWN) or successes >= policy.recover_after_checks
        health = Health.CONNECTED if recovered else before.health
        return Streak(
            health, 0 if recovered else before.failures_in_row, successes, None if recovered else before.failing_since
        )
    failures = before.failures_in_row + 1
    since = before.failing_since or now
    if before.health is Health.PAUSED:
        return Streak(Health.PAUSED, failures, 0, since)
    if refused_credential:
        return Streak(Health.NEEDS_RECONNECT, failures, 0, since)
    failing_for = now - since
    if failing_for >= policy.pause_after and failures >= policy.pause_after_checks:
        health = Health.PAUSED
    elif before.health is Health.NEEDS_RECONNECT:
        health = Health.NEEDS_RECONNECT  # another kind of failure does not make the credential good again
    elif failures >= policy.failing_after_checks or failing_for >= policy.failing_after:
        health = Health.FAILING
    else:
        health = Health.DEGRADED
    return Streak(health, failures, 0, since)


def worsened(old: Health, new: Health) -> bool:
    return SEVERITY[new] > SEVERITY[old]


def recovered(old: Health, new: Health) -> bool:
    """Connected again after anything else (a resumed integration starts as unknown): the alerts tell only
    those who were told it had worsened."""
    return new is Health.CONNECTED and old is not Health.CONNECTED
