"""health checks: a per-integration check lease shared by every process; covering indexes for statistics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 01:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATISTICS_COLUMNS = ["provider", "type", "status", "owner_id", "is_active", "last_checked_at", "created_at"]


def upgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_lease_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("check_lease_holder", sa.String(length=64), nullable=True))
        # Covers the statistics' GROUP BY (and its stale test), so it reads the index alone.
        batch_op.create_index("ix_integrations_statistics", STATISTICS_COLUMNS, unique=False)
        # The newest errors first (Statistics) and the list filtered by status.
        batch_op.create_index("ix_integrations_status_checked", ["status", "last_checked_at"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_trend", ["action", "at", "outcome", "integration_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_trend")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index("ix_integrations_status_checked")
        batch_op.drop_index("ix_integrations_statistics")
        batch_op.drop_column("check_lease_holder")
        batch_op.drop_column("check_lease_until")
