"""connect links (a customer connects their own CRM through a single-use link) and what a flow brings
along besides its tokens (the non-secret fields entered when it started, the link it came from)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connect_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("integration_name", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column(
            "integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("draft_configuration", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("result_integration_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("owner_seen_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_connect_links_owner_id", "connect_links", ["owner_id"])
    op.create_index("ix_connect_links_created_at", "connect_links", ["created_at"])
    with op.batch_alter_table("oauth_flows") as batch:
        batch.add_column(sa.Column("draft_configuration", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("link_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_oauth_flows_link_id", "connect_links", ["link_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_flows") as batch:
        batch.drop_constraint("fk_oauth_flows_link_id", type_="foreignkey")
        batch.drop_column("link_id")
        batch.drop_column("draft_configuration")
    op.drop_index("ix_connect_links_created_at", table_name="connect_links")
    op.drop_index("ix_connect_links_owner_id", table_name="connect_links")
    op.drop_table("connect_links")
