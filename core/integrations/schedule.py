"""When an integration is next checked: its owner's tier's interval (core.tiers.CHECK_INTERVAL_SECONDS),
spread with jitter so that a thousand integrations added at once are not all checked in the same second."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from core import tiers
from core.integrations.health import Health

JITTER = 0.1  # each interval is stretched or shrunk by up to this fraction
# A refused credential is re-checked (it may be fixed at the provider's side) but not more often than this:
# each attempt can count against the customer's account lock-out.
NEEDS_RECONNECT_AT_MOST_EVERY = timedelta(hours=6)


def interval_for(tier: str, health: Health, override_seconds: float | None = None) -> timedelta:
    if override_seconds:
        return timedelta(seconds=override_seconds)
    try:
        seconds = tiers.CHECK_INTERVAL_SECONDS[tiers.Tier.parse(tier)]
    except ValueError:  # an unknown stored tier is treated as the lowest
        seconds = tiers.CHECK_INTERVAL_SECONDS[tiers.Tier.FREE]
    interval = timedelta(seconds=seconds)
    if health is Health.NEEDS_RECONNECT:
        return max(interval, NEEDS_RECONNECT_AT_MOST_EVERY)
    return interval


def next_due(now: datetime, interval: timedelta, rng: random.Random | None = None) -> datetime:
    """After a check: one interval later, give or take JITTER of it."""
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return now + interval * factor


def first_due(now: datetime, interval: timedelta, rng: random.Random | None = None) -> datetime:
    """An integration never scheduled before: anywhere within its first interval, so checks spread out."""
    return now + interval * (rng or random).uniform(0, 1)
