"""edit versions: staff accounts and widget presets get a version (optimistic locking), accounts who/when

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("updated_by", sa.String(length=64), nullable=True))
        # Existing rows start at version 1, like a new row.
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("widget_presets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("widget_presets", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("updated_by")
        batch_op.drop_column("updated_at")
