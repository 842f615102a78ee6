"""contact sync: the CRM object a sync writes (contacts, or leads where the CRM has them)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_syncs") as batch:
        batch.add_column(sa.Column("crm_object", sa.String(length=16), nullable=False, server_default="contacts"))


def downgrade() -> None:
    with op.batch_alter_table("contact_syncs") as batch:
        batch.drop_column("crm_object")
