"""Check leases: at most one connection check of an integration at a time, across every app process.

A lease is two columns on the integration row. Claiming is one conditional UPDATE, so two processes
racing for the same row cannot both win; a lease that outlives a crashed process expires by itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from core.http import HttpPolicy
from core.models import Integration, utcnow

LEASE_MARGIN = timedelta(minutes=1)  # database writes, thread start-up, clock steps around the check
# Longer than one check can take: a check runs inside its deadline (HttpPolicy.check_deadline).
LEASE_TIME = timedelta(minutes=5)


def lease_time(policy: HttpPolicy) -> timedelta:
    """How long a check's lease lasts: its deadline plus a margin, never less than LEASE_TIME."""
    lease = max(LEASE_TIME, timedelta(seconds=policy.check_deadline) + LEASE_MARGIN)
    assert lease.total_seconds() > policy.check_deadline, "a lease must outlive the check it guards"
    return lease


CLAIM_CHUNK = 500  # ids per UPDATE, well under every database's parameter limit

# Built once with bound parameters: every engine check runs these, and building a statement costs
# SQLAlchemy more than running it.
_CLAIM = (
    update(Integration)
    .where(
        Integration.id.in_(bindparam("ids", expanding=True)),
        or_(
            Integration.check_lease_until.is_(None),
            Integration.check_lease_until < bindparam("now"),
            Integration.check_lease_holder == bindparam("holder"),
        ),
    )
    .values(
        check_lease_until=bindparam("until"), check_lease_holder=bindparam("holder"), check_lease_host=bindparam("host")
    )
    .returning(Integration.id, Integration.provider, Integration.configuration)
    .execution_options(synchronize_session=False)
)
_RUNNING = (
    select(
        func.count(),
        func.coalesce(func.sum(case((Integration.check_lease_host == bindparam("host"), 1), else_=0)), 0),
    )
    .select_from(Integration)
    .where(Integration.check_lease_until >= bindparam("now"))
)
_RELEASE = (
    update(Integration)
    .where(Integration.id.in_(bindparam("ids", expanding=True)), Integration.check_lease_holder == bindparam("holder"))
    .values(check_lease_until=None, check_lease_holder=None, check_lease_host=None)
    .execution_options(synchronize_session=False)
)


def new_holder() -> str:
    return secrets.token_hex(16)


def claim(
    session: Session, ids: Iterable[int], holder: str, lease: timedelta = LEASE_TIME, host: str | None = None
) -> list[tuple[int, str, dict]]:
    """Lease the free ones among ids to holder; returns (id, provider, configuration) of those leased.

    A lease holder already has is renewed: a holder is new for each check, except an engine job's,
    which its retry keeps so that it takes over what its failed attempt could not free.

    host, when given, is the customer host the check calls: running() counts leases per host, so the
    per-host cap holds across every worker. Commit the session to make the leases visible to others.
    """
    ids = list(ids)
    now = utcnow()
    leased = []
    for start in range(0, len(ids), CLAIM_CHUNK):
        chunk = ids[start : start + CLAIM_CHUNK]
        taken = {"ids": chunk, "now": now, "until": now + lease, "holder": holder, "host": host}
        leased += session.execute(_CLAIM, taken).all()
    return [(row.id, row.provider, row.configuration) for row in leased]


def running(session: Session, host: str, now: datetime) -> tuple[int, int]:
    """Live leases in all, and on host: the checks under way on every worker (read after claiming one's own,
    so two workers racing for the last slot both see both leases and neither goes over the cap)."""
    counted = session.execute(_RUNNING, {"host": host, "now": now}).one()
    return counted[0], counted[1]


def renew(session: Session, integration_id: int, holder: str, lease: timedelta = LEASE_TIME) -> bool:
    """Extend holder's lease on integration_id to now + lease, if holder still holds it and it has not expired.

    One conditional UPDATE; False when the lease expired or another holder has it (then holder must not
    start the check). A check leased ahead (check all) renews right before it starts, so time spent
    waiting in a queue never eats into the lease that has to outlive its deadline.
    """
    now = utcnow()
    result = cast(  # an UPDATE's result is a CursorResult (with rowcount); Session.execute types it as Result
        CursorResult,
        session.execute(
            update(Integration)
            .where(
                Integration.id == integration_id,
                Integration.check_lease_holder == holder,
                Integration.check_lease_until >= now,
            )
            .values(check_lease_until=now + lease)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


def release(session: Session, ids: Iterable[int], holder: str) -> None:
    """Free the leases holder still has among ids (an expired lease someone else took is left alone)."""
    ids = list(ids)
    for start in range(0, len(ids), CLAIM_CHUNK):
        session.execute(_RELEASE, {"ids": ids[start : start + CLAIM_CHUNK], "holder": holder})


def holder_of(session: Session, integration_id: int) -> str | None:
    """Who holds a live lease on the integration now, if anyone."""
    row = session.execute(
        select(Integration.check_lease_holder, Integration.check_lease_until).where(Integration.id == integration_id)
    ).one_or_none()
    if row is None or row.check_lease_until is None or row.check_lease_until < utcnow():
        return None
    return row.check_lease_holder
