"""statistics ledgers: counts of integrations, their freshness by hour and the checks of each day, kept by
database triggers on every write (so no write path can forget them), read by Statistics and Overview

Each ledger is append-only: a trigger adds a +1 / -1 row, never updates one, so concurrent writers take no
row lock on a shared counter (no waits, no deadlocks between check batches); core.integrations.ledgers
folds the rows into one per key now and then, and every read sums what is there. The triggers' SQL is
core.integrations.ledger_triggers.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

from core.integrations import ledger_triggers, ledgers

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "stat_integration_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_key_columns(),
        sa.Column("health", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_table(
        "stat_integration_freshness",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        *_key_columns(),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_index("ix_stat_integration_freshness_hour", "stat_integration_freshness", ["hour"])
    op.create_table(
        "stat_check_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
    )
    op.create_index("ix_stat_check_days_day", "stat_check_days", ["day"])
    # Stale counts read only the integrations whose freshness falls in the hour the cut-off is in.
    op.create_index(
        "ix_integrations_freshness",
        "integrations",
        ["is_active", sa.text("coalesce(last_checked_at, created_at)")],
    )
    ledger_triggers.create(op.get_bind())
    # Integrations that exist already are counted once, here (the same recount the CLI's rebuild runs).
    ledgers.rebuild(op.get_bind())


def downgrade() -> None:
    ledger_triggers.drop(op.get_bind(), functions=True)
    op.drop_index("ix_integrations_freshness", table_name="integrations")
    op.drop_table("stat_check_days")
    op.drop_table("stat_integration_freshness")
    op.drop_table("stat_integration_counts")
