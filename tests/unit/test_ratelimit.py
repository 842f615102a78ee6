"""Rate limits: counted in the database, refusals say when to try again, buckets are independent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core.models import RateLimitHit
from core.ratelimit import Bucket, RateLimitedError, RateLimiter

LIMITS = {"tries": (3, 60), "slow": (1, 3600)}


def test_the_limit_refuses_the_attempt_after_the_last_allowed_one(ctx):
    limiter = RateLimiter(ctx.factory, LIMITS)
    bucket = Bucket("tries", "alice")
    for _ in range(3):
        limiter.attempt(bucket, "connection tests")
    with pytest.raises(RateLimitedError) as refused:
        limiter.attempt(bucket, "connection tests")
    assert "Too many connection tests" in str(refused.value)
    assert 55 <= refused.value.retry_after <= 60 and "Try again in 1 minute." in str(refused.value)
    limiter.attempt(Bucket("tries", "bob"), "connection tests")  # another person is not affected


def test_hits_older_than_the_window_no_longer_count(ctx):
    limiter = RateLimiter(ctx.factory, LIMITS)
    bucket = Bucket("tries", "alice")
    for _ in range(3):
        limiter.hit(bucket)
    with ctx.factory.begin() as session:
        session.execute(update(RateLimitHit).values(at=RateLimitHit.at - timedelta(seconds=61)))
    assert limiter.retry_after(bucket) == 0


def test_a_second_process_sees_the_same_counts(ctx):
    RateLimiter(ctx.factory, LIMITS).attempt(Bucket("slow", "host.example.com"), "tests of this host")
    other_process = RateLimiter(ctx.factory, LIMITS)  # same database, nothing shared in memory
    with pytest.raises(RateLimitedError, match="Try again in 60 minutes"):
        other_process.check(Bucket("slow", "HOST.example.com"), "tests of this host")


def test_reset_clears_one_bucket(ctx):
    limiter = RateLimiter(ctx.factory, LIMITS)
    limiter.hit(Bucket("slow", "a"))
    limiter.hit(Bucket("slow", "b"))
    limiter.reset(Bucket("slow", "a"))
    assert limiter.retry_after(Bucket("slow", "a")) == 0 and limiter.retry_after(Bucket("slow", "b")) > 0
