"""users.must_change_password: a one-time password (set by an administrator) must be replaced at sign-in

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


# A plain ALTER TABLE on every database: a batch "move and copy" of users on SQLite would break the
# statistics ledgers' triggers (0018), which name the table.
def upgrade() -> None:
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN must_change_password")  # SQLite >= 3.35 and PostgreSQL
