"""personalisation: the reader's locale and channel views, reactions, profiles and their
signals, watches and the alerts they raised, catch-ups sent

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("locale", sa.String(32), nullable=False, server_default=""))
    op.add_column("channel_members", sa.Column("last_viewed_at", sa.BigInteger(), nullable=False,
                                               server_default="0"))
    op.add_column("channels", sa.Column("purpose", sa.Text(), nullable=False, server_default=""))
    op.add_column("channels", sa.Column("header", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_posts_user_create", "posts", ["user_id", "create_at"])
    op.create_table(
        "reactions",
        sa.Column("post_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("emoji_name", sa.String(64), primary_key=True),
        sa.Column("channel_id", sa.String(64), nullable=False, index=True),
        sa.Column("create_at", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index("ix_reactions_user", "reactions", ["user_id", "create_at"])
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("personalize", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("interests", sa.Text(), nullable=False, server_default=""),
        sa.Column("catchup", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("alerts_from_interests", sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column("updated_at", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "profile_signals",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),  # authored reply reaction mention
        sa.Column("source", sa.String(64), primary_key=True),  # the post
        sa.Column("channel_id", sa.String(64), nullable=False, index=True),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("vector", sa.LargeBinary(), nullable=True),  # float32, filled on first use
    )
    op.create_index("ix_profile_signals_user_at", "profile_signals", ["user_id", "at"])
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("from_profile", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "watch_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False, server_default="0"),
        sa.Column("day", sa.String(10), nullable=False),  # UTC date, for the daily cap
        sa.Column("status", sa.String(16), nullable=False),  # pending sending sent skipped
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("watch_id", "thread_id", name="uq_watch_alerts_watch_thread"),
    )
    op.create_index("ix_watch_alerts_user_day", "watch_alerts", ["user_id", "day"])
    op.create_table(
        "catchups",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),  # sending sent skipped
        sa.Column("since", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("posts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for t in ("catchups", "watch_alerts", "watches", "profile_signals", "profiles", "reactions"):
        op.drop_table(t)
    op.drop_index("ix_posts_user_create", "posts")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("header")
        batch.drop_column("purpose")
    with op.batch_alter_table("channel_members") as batch:
        batch.drop_column("last_viewed_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
