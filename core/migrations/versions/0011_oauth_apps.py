"""oauth apps (the console's own OAuth client per provider) and authorization-code flows under way

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", sa.String(length=32), nullable=False, unique=True),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("authorize_url", sa.Text(), nullable=True),
        sa.Column("token_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
    )
    op.create_table(
        "oauth_flows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("state_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("verifier", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("integration_name", sa.String(length=200), nullable=False),
        sa.Column(
            "integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("outcome_hash", sa.String(length=64), nullable=True, unique=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_message", sa.Text(), nullable=True),
        sa.Column("result_integration_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_oauth_flows_actor_id", "oauth_flows", ["actor_id"])
    op.create_index("ix_oauth_flows_integration_id", "oauth_flows", ["integration_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_flows_integration_id", table_name="oauth_flows")
    op.drop_index("ix_oauth_flows_actor_id", table_name="oauth_flows")
    op.drop_table("oauth_flows")
    op.drop_table("oauth_apps")
