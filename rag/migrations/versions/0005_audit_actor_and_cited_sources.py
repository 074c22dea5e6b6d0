"""audit: who acted (the service key or the person), and which of the sources were cited

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable columns: a plain ADD COLUMN on SQLite and PostgreSQL alike; rows written before
    # this revision name no actor and list no cited sources (their source_ids were the cited ones)
    op.add_column("audit_log", sa.Column("actor", sa.String(128), nullable=True))
    op.add_column("audit_log", sa.Column("cited_ids", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("cited_ids")
        batch.drop_column("actor")
