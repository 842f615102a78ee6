"""the task engine: health states, schedules, check history and rollups, health changes, check runs, engine leases

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_lease_host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("health", sa.String(length=20), nullable=False, server_default="unknown"))
        batch_op.add_column(sa.Column("health_changed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("failures_in_row", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("successes_in_row", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_check_class", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("planned_until", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_integrations_due", ["is_active", "next_check_at"])
        batch_op.create_index("ix_integrations_lease_host", ["check_lease_host", "check_lease_until"])
        batch_op.create_index("ix_integrations_lease_until", ["check_lease_until"])
        batch_op.create_index("ix_integrations_health", ["health", "owner_id"])
    # What the last check said is the health to start from; an inactive integration is paused.
    op.execute("UPDATE integrations SET health = 'connected' WHERE status = 'connected' AND is_active")
    op.execute("UPDATE integrations SET health = 'degraded', failures_in_row = 1 WHERE status = 'error' AND is_active")
    op.execute("UPDATE integrations SET health = 'paused' WHERE NOT is_active")

    op.create_table(
        "check_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("check_class", sa.String(length=20), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_check_history_integration_at", "check_history", ["integration_id", "at"])
    op.create_index("ix_check_history_at", "check_history", ["at"])

    op.create_table(
        "check_rollups",
        sa.Column(
            "integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("latency_ms_total", sa.Integer(), nullable=False),
        sa.Column("latency_ms_max", sa.Integer(), nullable=False),
    )

    op.create_table(
        "health_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("integration_id", sa.Integer(), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("old", sa.String(length=20), nullable=False),
        sa.Column("new", sa.String(length=20), nullable=False),
        sa.Column("check_class", sa.String(length=20), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_health_changes_integration_id", "health_changes", ["integration_id"])
    op.create_index("ix_health_changes_processed_at", "health_changes", ["processed_at"])

    op.create_table(
        "check_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("connected", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("progress_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_check_runs_actor_id", "check_runs", ["actor_id"])

    op.create_table(
        "check_run_items",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("check_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("integration_id", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("handed_out_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_check_run_items_state", "check_run_items", ["run_id", "state", "position"])

    op.create_table(
        "engine_leases",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("engine_leases")
    op.drop_index("ix_check_run_items_state", table_name="check_run_items")
    op.drop_table("check_run_items")
    op.drop_index("ix_check_runs_actor_id", table_name="check_runs")
    op.drop_table("check_runs")
    op.drop_index("ix_health_changes_processed_at", table_name="health_changes")
    op.drop_index("ix_health_changes_integration_id", table_name="health_changes")
    op.drop_table("health_changes")
    op.drop_table("check_rollups")
    op.drop_index("ix_check_history_at", table_name="check_history")
    op.drop_index("ix_check_history_integration_at", table_name="check_history")
    op.drop_table("check_history")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index("ix_integrations_health")
        batch_op.drop_index("ix_integrations_lease_until")
        batch_op.drop_index("ix_integrations_lease_host")
        batch_op.drop_index("ix_integrations_due")
        for column in (
            "planned_until",
            "next_check_at",
            "last_check_class",
            "failing_since",
            "successes_in_row",
            "failures_in_row",
            "health_changed_at",
            "health",
            "check_lease_host",
        ):
            batch_op.drop_column(column)
