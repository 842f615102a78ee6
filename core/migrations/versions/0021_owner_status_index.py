"""integrations (owner_id, status, last_checked_at): a member's failing list (Overview) reads only their own rows

Without it the planners walk ix_integrations_status_checked over every tenant's failing integrations in
check order to find one member's: 267 ms on SQLite at a million integrations, 2 ms with it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 01:40:00.000000
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


# A plain CREATE INDEX on every database: a batch "move and copy" of integrations on SQLite would break the
# statistics ledgers' triggers (0018), which name the table.
def upgrade() -> None:
    op.create_index("ix_integrations_owner_status", "integrations", ["owner_id", "status", "last_checked_at"])


def downgrade() -> None:
    op.drop_index("ix_integrations_owner_status", table_name="integrations")
