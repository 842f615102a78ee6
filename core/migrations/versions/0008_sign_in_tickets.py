"""sign-in hand-over tickets: the server sets the HttpOnly cookie in exchange for a single-use ticket

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sign_in_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handle", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ticket_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ticket_expires_at", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_sign_in_sessions_handle", ["handle"])
        batch_op.create_unique_constraint("uq_sign_in_sessions_ticket_hash", ["ticket_hash"])
    # A session from before this migration is named by its (unchanging) token hash.
    op.execute("UPDATE sign_in_sessions SET handle = token_hash WHERE handle IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("sign_in_sessions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sign_in_sessions_ticket_hash", type_="unique")
        batch_op.drop_constraint("uq_sign_in_sessions_handle", type_="unique")
        batch_op.drop_column("ticket_expires_at")
        batch_op.drop_column("ticket_hash")
        batch_op.drop_column("handle")
