"""One writer process of the ledger exactness test: a random mix of writes through the service layer.

python -m tests.multiprocess.ledger_writer DATABASE_URL SEED OPERATIONS USERNAME...

Creates, deletes, checks recording a status and health, pauses, resumes, owner transfers, tier changes and
ledger folds, chosen at random among the given users. A write that loses a race with the other process
(a conflict, a row deleted meanwhile, a busy SQLite) is refused and rolled back: it is counted, not retried,
since a rolled-back write leaves the ledgers as they were. Prints one JSON line: what succeeded, per kind.
"""

from __future__ import annotations

import json
import random
import sys
import time

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

import app_context
from core.errors import ConsoleError
from core.integrations import leases, ledgers
from core.integrations.checks import CheckOutcome
from core.models import Integration
from core.results import TestResult
from core.tiers import Tier
from tests.conftest import make_settings

CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "ledger-test-token-1"}
KINDS = ("create", "create", "delete", "check", "check", "pause", "resume", "transfer", "tier", "compact")
DEADLINE_SECONDS = 120


def main(argv: list[str]) -> int:
    url, seed, operations, usernames = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    rng = random.Random(seed)
    ctx = app_context.build(make_settings(url), migrate=False)
    users = {name: ctx.users.get_by_username(name) for name in usernames}
    admin = next(u for u in users.values() if u.role == "admin").actor()
    done: dict[str, int] = {}
    refused: dict[str, int] = {}
    started = time.monotonic()
    for step in range(operations):
        if time.monotonic() - started > DEADLINE_SECONDS:
            break
        kind = rng.choice(KINDS)
        try:
            if _run(ctx, rng, kind, admin, users, seed, step):
                done[kind] = done.get(kind, 0) + 1
        # Refused: conflict, gone, busy; IntegrityError: a check recorded for an integration the other process
        # deleted after the claim (on SQLite the claim's read and the record's write are not one snapshot).
        # Either way the transaction rolled back.
        except (ConsoleError, IntegrityError) as exc:
            refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
    print(json.dumps({"done": done, "refused": refused}))
    ctx.engine.dispose()
    return 0


def _some_integration(ctx, rng: random.Random) -> int | None:
    with ctx.factory() as session:
        ids = session.scalars(select(Integration.id).order_by(Integration.id)).all()
    return rng.choice(ids) if ids else None


def _run(ctx, rng: random.Random, kind: str, admin, users: dict, seed: int, step: int) -> bool:
    if kind == "create":
        owner = rng.choice(list(users.values())).actor()
        ctx.integrations.create(owner, f"Desk {seed}-{step}", "CHATWOOT", CONFIG)
        return True
    if kind == "compact":
        with ctx.engine.begin() as conn:
            ledgers.compact(conn)
        return True
    if kind == "tier":
        name = rng.choice(list(users))
        ctx.users.set_tier(None, name, rng.choice([t.name for t in Tier]))
        return True
    integration_id = _some_integration(ctx, rng)
    if integration_id is None:
        return False
    if kind == "delete":
        ctx.integrations.delete(admin, integration_id)
    elif kind == "pause":
        ctx.integrations.pause(admin, integration_id)
    elif kind == "resume":
        ctx.integrations.resume(admin, integration_id)
    elif kind == "transfer":  # no service operation moves an integration yet: the database write itself
        owner = rng.choice(list(users.values()))
        with ctx.factory.begin() as session:
            session.execute(update(Integration).where(Integration.id == integration_id).values(owner_id=owner.id))
    elif kind == "check":
        holder = leases.new_holder()
        claimed = ctx.integrations.claim_checks([integration_id], holder)
        if not claimed:
            return False
        success = rng.random() < 0.6
        result = TestResult(success, "Connected." if success else "The server said no.")
        ctx.integrations.record_checks(admin, holder, [CheckOutcome(integration_id, "CHATWOOT", result)])
    return True


def count_integrations(ctx) -> int:
    with ctx.factory() as session:
        return int(session.scalar(select(func.count(Integration.id))) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
