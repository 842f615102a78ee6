"""widget presets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "widget_presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_widget_presets_owner_name"),
    )
    with op.batch_alter_table("widget_presets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_widget_presets_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_widget_presets_integration_id"), ["integration_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("widget_presets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_widget_presets_integration_id"))
        batch_op.drop_index(batch_op.f("ix_widget_presets_owner_id"))
    op.drop_table("widget_presets")
