"""alerts: subscriptions, deliveries (with their dedupe key), incidents and their members

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("target_hint", sa.String(length=254), nullable=False),
        sa.Column("states", sa.JSON(), nullable=False),
        sa.Column("recovery", sa.Boolean(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_alert_subscriptions_user_id", "alert_subscriptions", ["user_id"])

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("open_key", sa.String(length=300), nullable=True, unique=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incidents_key", "incidents", ["key"])

    op.create_table(
        "incident_members",
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("integration_id", sa.Integer(), primary_key=True),
        sa.Column("before", sa.String(length=20), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_incident_members_integration", "incident_members", ["integration_id"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("recipient_key", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("alert_subscriptions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target_hint", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("health_change_id", sa.Integer(), nullable=True),
        sa.Column("old", sa.String(length=20), nullable=True),
        sa.Column("new", sa.String(length=20), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_alert_deliveries_user_id", "alert_deliveries", ["user_id"])
    op.create_index("ix_alert_deliveries_subscription_id", "alert_deliveries", ["subscription_id"])
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "due_at"])
    op.create_index("ix_alert_deliveries_recipient", "alert_deliveries", ["recipient_key", "integration_id", "id"])
    op.create_index("ix_alert_deliveries_incident", "alert_deliveries", ["incident_id", "kind"])
    op.create_index("ix_alert_deliveries_integration", "alert_deliveries", ["integration_id", "status"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("incident_members")
    op.drop_table("incidents")
    op.drop_table("alert_subscriptions")
