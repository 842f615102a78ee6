"""the greeting bot of a Chatwoot integration: its agent bot and receiver, the conversations it greeted,
and the events Chatwoot posted to it (each kept once)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatwoot_bots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "integration_id",
            sa.Integer(),
            sa.ForeignKey("integrations.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("receiver_id", sa.String(length=32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("chatwoot_bot_id", sa.Integer(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("welcome_message", sa.Text(), nullable=False, server_default=""),
        sa.Column("out_of_hours_message", sa.Text(), nullable=False, server_default=""),
        sa.Column("handoff_keyword", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("office_hours_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"),
        sa.Column("office_days", sa.String(length=20), nullable=False, server_default="0,1,2,3,4"),
        sa.Column("office_from", sa.String(length=5), nullable=False, server_default="09:00"),
        sa.Column("office_to", sa.String(length=5), nullable=False, server_default="17:00"),
        sa.Column("last_event_at", sa.DateTime(), nullable=True),
        sa.Column("last_event_kind", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("self_test_at", sa.DateTime(), nullable=True),
        sa.Column("self_test_message", sa.Text(), nullable=True),
        sa.Column("self_test_ok", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "chatwoot_bot_conversations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bot_id", sa.Integer(), sa.ForeignKey("chatwoot_bots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("incoming", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("answer_after", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("greeted_at", sa.DateTime(), nullable=True),
        sa.Column("handed_off_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("bot_id", "conversation_id", name="uq_chatwoot_bot_conversation"),
    )
    op.create_table(
        "chatwoot_bot_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bot_id", sa.Integer(), sa.ForeignKey("chatwoot_bots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("incoming", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("wants_human", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.UniqueConstraint("bot_id", "event_key", name="uq_chatwoot_bot_event"),
    )
    op.create_index("ix_chatwoot_bot_events_received_at", "chatwoot_bot_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_chatwoot_bot_events_received_at", table_name="chatwoot_bot_events")
    op.drop_table("chatwoot_bot_events")
    op.drop_table("chatwoot_bot_conversations")
    op.drop_table("chatwoot_bots")
