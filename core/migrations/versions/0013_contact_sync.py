"""contact sync: syncs between a CRM and Chatwoot, the identity links of each pair, and run reports

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_syncs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "crm_integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "chatwoot_integration_id",
            sa.Integer(),
            sa.ForeignKey("integrations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("crm_cursor", sa.String(length=64), nullable=True),
        sa.Column("chatwoot_cursor", sa.String(length=64), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("crm_integration_id", "chatwoot_integration_id", name="uq_contact_sync_pair"),
    )
    op.create_index("ix_contact_syncs_owner_id", "contact_syncs", ["owner_id"])
    op.create_index("ix_contact_syncs_crm_integration_id", "contact_syncs", ["crm_integration_id"])
    op.create_index("ix_contact_syncs_chatwoot_integration_id", "contact_syncs", ["chatwoot_integration_id"])
    op.create_index("ix_contact_syncs_next_run_at", "contact_syncs", ["next_run_at"])
    op.create_table(
        "contact_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sync_id", sa.Integer(), sa.ForeignKey("contact_syncs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("chatwoot_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("crm_hash", sa.String(length=64), nullable=True),
        sa.Column("chatwoot_hash", sa.String(length=64), nullable=True),
        sa.Column("crm_modified", sa.Float(), nullable=True),
        sa.Column("chatwoot_modified", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("sync_id", "crm_id", name="uq_contact_link_crm"),
        sa.UniqueConstraint("sync_id", "chatwoot_id", name="uq_contact_link_chatwoot"),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sync_id", sa.Integer(), sa.ForeignKey("contact_syncs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_sync_runs_sync_id", "sync_runs", ["sync_id"])


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_table("contact_links")
    op.drop_index("ix_contact_syncs_next_run_at", "contact_syncs")
    op.drop_index("ix_contact_syncs_chatwoot_integration_id", "contact_syncs")
    op.drop_index("ix_contact_syncs_crm_integration_id", "contact_syncs")
    op.drop_index("ix_contact_syncs_owner_id", "contact_syncs")
    op.drop_table("contact_syncs")
