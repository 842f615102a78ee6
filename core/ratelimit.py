"""Rate limits kept in the database, so they hold across several app processes.

Every number is here, in LIMITS: (attempts, window in seconds) per bucket kind.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import DateTime, String, delete, func, insert, literal, select, text
from sqlalchemy.orm import sessionmaker

from core.errors import ConsoleError
from core.models import RateLimitHit, utcnow

LIMITS: dict[str, tuple[int, int]] = {
    "sign_in_failure": (10, 15 * 60),  # failed sign-ins per user name
    "test_per_user": (30, 60),  # connection tests per person
    "test_per_host": (20, 60),  # connection tests per customer host, from everyone together
    "agent_create": (10, 10 * 60),  # helpdesk agents created per person
    "widget_script": (60, 60),  # widget scripts generated per person
    "chatwoot_create": (20, 10 * 60),  # website inboxes and greeting bots created, and self-tests, per person
    "check_all": (10, 10 * 60),  # health-check runs per person (each one bounded by its own caps)
    "oauth_callback": (30, 10 * 60),  # OAuth callbacks per client address (a public route)
    "connect_link_public": (30, 10 * 60),  # connect-link pages and Connect presses per client address (public)
    "connect_link_create": (60, 60 * 60),  # connect links created per person
}
SWEEP_AFTER = timedelta(days=1)
SWEEP_CHANCE = 0.01


class RateLimitedError(ConsoleError):
    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


@dataclass(frozen=True)
class Bucket:
    kind: str
    subject: str  # a user id, a user name or a host

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject.lower()[:150]}"


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{max(seconds, 1)} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class RateLimiter:
    def __init__(self, factory: sessionmaker, limits: dict[str, tuple[int, int]] | None = None):
        self._factory = factory
        self._limits = limits or LIMITS

    def retry_after(self, bucket: Bucket) -> int:
        """Seconds until one more attempt is allowed (0: allowed now)."""
        allowed, window = self._limits[bucket.kind]
        now = utcnow()
        with self._factory() as session:
            hits = session.scalars(
                select(RateLimitHit.at)
                .where(RateLimitHit.bucket == bucket.key, RateLimitHit.at > now - timedelta(seconds=window))
                .order_by(RateLimitHit.at.desc())
                .limit(allowed)
            ).all()
        if len(hits) < allowed:
            return 0
        return max(1, math.ceil((hits[-1] + timedelta(seconds=window) - now).total_seconds()))

    def over_limit(self, kind: str) -> set[str]:
        """Every subject of one kind that is at its limit now, in one query."""
        allowed, window = self._limits[kind]
        prefix = f"{kind}:"
        with self._factory() as session:
            full = session.scalars(
                select(RateLimitHit.bucket)
                .where(
                    RateLimitHit.bucket.startswith(prefix, autoescape=True),
                    RateLimitHit.at > utcnow() - timedelta(seconds=window),
                )
                .group_by(RateLimitHit.bucket)
                .having(func.count(RateLimitHit.id) >= allowed)
            )
            return {bucket.removeprefix(prefix) for bucket in full}

    def check(self, bucket: Bucket, what: str) -> None:
        """Refuse with a message that says when to try again."""
        if self.retry_after(bucket):
            raise self.refusal(bucket, what)

    def hit(self, bucket: Bucket) -> None:
        with self._factory.begin() as session:
            session.add(RateLimitHit(bucket=bucket.key))
            if random.random() < SWEEP_CHANCE:  # now and then, forget hits older than any window
                session.execute(delete(RateLimitHit).where(RateLimitHit.at < utcnow() - SWEEP_AFTER))

    def take(self, bucket: Bucket) -> bool:
        """Count one attempt if fewer than the limit are in the window: True when it was counted.

        Check and count are one step, across threads and processes, so parallel attempts can never take
        more than the limit. On SQLite the single INSERT ... SELECT ... WHERE count < limit takes the
        database's write lock before it counts (it is the first statement of its transaction). On
        PostgreSQL, where two such statements could both count under READ COMMITTED, a transaction-level
        advisory lock on the bucket's name serialises them first; the INSERT's snapshot is taken after it.
        """
        allowed, window = self._limits[bucket.kind]
        now = utcnow()
        recent = (
            select(func.count(RateLimitHit.id))
            .where(RateLimitHit.bucket == bucket.key, RateLimitHit.at > now - timedelta(seconds=window))
            .scalar_subquery()
        )
        row = select(literal(bucket.key, String), literal(now, DateTime)).where(recent < allowed)
        with self._factory.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": bucket.key})
            counted = insert(RateLimitHit).from_select(["bucket", "at"], row).returning(RateLimitHit.id)
            taken = session.execute(counted).first() is not None  # RETURNING: the row count is unreliable
            if taken and random.random() < SWEEP_CHANCE:
                session.execute(delete(RateLimitHit).where(RateLimitHit.at < utcnow() - SWEEP_AFTER))
        return taken

    def refusal(self, bucket: Bucket, what: str) -> RateLimitedError:
        wait = self.retry_after(bucket) or 1
        return RateLimitedError(f"Too many {what} in a short time. Try again in {_wait_text(wait)}.", wait)

    def attempt(self, bucket: Bucket, what: str) -> None:
        """Count this attempt, or refuse it with a message that says when to try again (one atomic step)."""
        if not self.take(bucket):
            raise self.refusal(bucket, what)

    def reset(self, bucket: Bucket) -> None:
        with self._factory.begin() as session:
            session.execute(delete(RateLimitHit).where(RateLimitHit.bucket == bucket.key))
