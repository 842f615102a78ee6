"""integrations (status | provider | health, name_key, id): a filtered list reads its page in order

The Integrations list is ordered by name. Filtered by status, provider or health, the planners had only an
index on the filter's column: they read every match and sorted it for one page of 50. An administrator's
"Error" list took 370 ms on SQLite at a million integrations and "Connected" 2.3 s; with these, 2-4 ms.

On SQLite the migration also analyzes users and integrations, the tables the scheduler analyzes again
every day (core.db.PLANNED_TABLES; PostgreSQL's autovacuum analyzes by itself). Only those: statistics
of another table taken once, while it is small, would mislead the planner for ever after. Without
statistics SQLite cannot tell one owner's rows (a few hundred) from one status's (hundreds of thousands),
and a member's "Active" list walked every tenant's active rows (67 ms, 3 ms with them).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 21:20:00.000000
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_integrations_status_name": "status",
    "ix_integrations_provider_name": "provider",
    "ix_integrations_health_name": "health",
}


# Plain CREATE INDEX on every database: a batch "move and copy" of integrations on SQLite would break the
# statistics ledgers' triggers (0018), which name the table.
def upgrade() -> None:
    for name, column in INDEXES.items():
        op.create_index(name, "integrations", [column, "name_key", "id"])
    if op.get_bind().dialect.name == "sqlite":
        for table in ("users", "integrations"):  # core.db.PLANNED_TABLES, as they were at this revision
            op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="integrations")
