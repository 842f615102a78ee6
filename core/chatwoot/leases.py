"""A named lease held around one remote find-or-create (an inbox per site, the agent bot per account), so
two requests at once (a double click, two tabs, two app processes) cannot both create: the second waits,
bounded, for the first, then finds what it made. The lease is an engine_leases row every process sees
(core.engine.scheduler.claim_marker); one left by a crashed process frees itself when its time is up."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from core.chatwoot.helpdesk import HelpdeskError
from core.engine.scheduler import claim_marker
from core.models import EngineLease, utcnow

# Longer than a look-up, a creation and an attachment take inside their HTTP deadlines.
LEASE_TIME = timedelta(minutes=3)
WAIT_SECONDS = 20.0  # how long a second request waits for the first before saying so
WAIT_STEP = 0.2


@contextmanager
def held(factory: sessionmaker, name: str, busy: str, wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the lease ``name`` for the block, waiting while another holder has it; after ``wait_seconds``
    raise HelpdeskError(busy, "busy"). Released when the block ends, however it ends."""
    holder = secrets.token_hex(16)
    deadline = time.monotonic() + wait_seconds
    while not claim_marker(factory, name, holder, utcnow() + LEASE_TIME):
        if time.monotonic() >= deadline:
            raise HelpdeskError(busy, "busy")
        time.sleep(WAIT_STEP)
    try:
        yield
    finally:
        with factory.begin() as session:
            session.execute(delete(EngineLease).where(EngineLease.name == name, EngineLease.holder == holder))


__all__ = ["LEASE_TIME", "held"]
