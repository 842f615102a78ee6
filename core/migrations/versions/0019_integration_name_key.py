"""integrations.name_key: the natural sort key of the name ("Acme 20" before "Acme 100"), so the list is
sorted and paged by the database

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

from core.natural import natural_key

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    # A plain ALTER TABLE: a batch "move and copy" on SQLite would break the ledgers' triggers (0018).
    op.add_column("integrations", sa.Column("name_key", sa.String(length=255), nullable=False, server_default=""))
    connection = op.get_bind()
    table = sa.table("integrations", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
    keyed = sa.table("integrations", sa.column("id", sa.Integer()), sa.column("name_key", sa.String()))
    last = 0
    while True:  # in batches by id, so a large table is not read at once
        rows = connection.execute(
            sa.select(table.c.id, table.c.name).where(table.c.id > last).order_by(table.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            sa.update(keyed).where(keyed.c.id == sa.bindparam("row_id")).values(name_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": natural_key(row.name)} for row in rows],
        )
        last = rows[-1].id
    op.create_index("ix_integrations_name_key", "integrations", ["name_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_integrations_name_key", table_name="integrations")
    op.execute("ALTER TABLE integrations DROP COLUMN name_key")  # SQLite >= 3.35 and PostgreSQL
