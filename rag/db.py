"""The permission mirror and the post store: users, teams, channels, memberships, posts, files.

Schema changes go through Alembic (``rag/migrations``); :func:`open_database` upgrades to head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    type: Mapped[str] = mapped_column(String(1), default="O")
    delete_at: Mapped[int] = mapped_column(BigInteger, default=0)


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    name: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    type: Mapped[str] = mapped_column(String(1))  # O, P, D, G
    delete_at: Mapped[int] = mapped_column(BigInteger, default=0)  # archived when > 0
    purpose: Mapped[str] = mapped_column(Text, default="", server_default="")
    header: Mapped[str] = mapped_column(Text, default="", server_default="")
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    index_version: Mapped[int] = mapped_column(Integer, default=0)
    dirty: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # bumped each time the channel is marked dirty: the indexer clears ``dirty`` only if no
    # change arrived while it was indexing (live updates and a re-index may overlap)
    dirty_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str] = mapped_column(String(256), default="")
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str] = mapped_column(String(128), default="")
    nickname: Mapped[str] = mapped_column(String(128), default="")
    position: Mapped[str] = mapped_column(String(256), default="")
    locale: Mapped[str] = mapped_column(String(32), default="", server_default="")
    roles: Mapped[str] = mapped_column(String(256), default="system_user")
    is_guest: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    delete_at: Mapped[int] = mapped_column(BigInteger, default=0)  # deactivated when > 0

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.username


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    roles: Mapped[str] = mapped_column(String(256), default="team_user")


class ChannelMember(Base):
    __tablename__ = "channel_members"
    channel_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    roles: Mapped[str] = mapped_column(String(256), default="channel_user")
    # when the member last viewed the channel (Mattermost's ChannelMember.last_viewed_at)
    last_viewed_at: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    root_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(64), default="")
    create_at: Mapped[int] = mapped_column(BigInteger)
    edit_at: Mapped[int] = mapped_column(BigInteger, default=0)
    delete_at: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_posts_channel_create", "channel_id", "create_at"),
                      Index("ix_posts_user_create", "user_id", "create_at"))


class File(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32), default="file")  # file | transcript
    sha256: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    create_at: Mapped[int] = mapped_column(BigInteger, default=0)
    delete_at: Mapped[int] = mapped_column(BigInteger, default=0)


@dataclass
class Database:
    engine: Engine
    session: sessionmaker

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_database(url: str, *, upgrade: bool = True) -> Database:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    pooled: dict = {}
    if parsed.database not in (None, "", ":memory:"):
        # enough pooled connections for the worker threads of concurrent questions: past the
        # pool, each checkout opened a fresh connection (for SQLite, with its pragmas)
        pooled = {"pool_size": 12, "max_overflow": 12}
    # a liveness ping before each checkout only makes sense for a server
    engine = create_engine(url, future=True, pool_pre_ping=not sqlite, **pooled)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        migrate(engine)
    return Database(engine=engine, session=sessionmaker(engine, expire_on_commit=False))


# ---- answers, conversations, feedback, audit (issue 3) ------------------------------------
class Conversation(Base):
    """A thread of questions and answers; a summary is a conversation whose context is its
    source posts. ``channel_ids`` lists every channel whose content it used."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="ask")  # ask | summary
    title: Mapped[str] = mapped_column(String(512), default="")
    source_post_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    channel_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON: what was summarised
    created_at: Mapped[int] = mapped_column(BigInteger)


class ConversationMessage(Base):
    __tablename__ = "conversation_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    answer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Answer(Base):
    __tablename__ = "answers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, default="")
    sources: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    model: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditRecord(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))  # search | ask | summary | feedback
    question: Mapped[str] = mapped_column(Text, default="")
    channel_ids: Mapped[str] = mapped_column(Text, default="[]")
    source_ids: Mapped[str] = mapped_column(Text, default="[]")
    model: Mapped[str] = mapped_column(String(128), default="")
    input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    answer_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # who acted: the service key's name or the signed-in person (None: not said, before 0005)
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # ``source_ids`` lists every source the model was given; these are the ones it cited
    cited_ids: Mapped[str | None] = mapped_column(Text, nullable=True)


# ---- the live Mattermost connection (issue 4) --------------------------------------------
class SyncCursor(Base):
    """Per channel, the newest ``update_at`` applied from Mattermost: after a gap the bot asks
    for posts changed since then (``GET /channels/{id}/posts?since=``)."""

    __tablename__ = "sync_cursors"
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    update_at: Mapped[int] = mapped_column(BigInteger, default=0)


class BotTrigger(Base):
    """A post the bot has taken up (a mention, a DM): it is never answered twice, across
    restarts and catch-ups."""

    __tablename__ = "bot_triggers"
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="started")  # started | done | failed
    at: Mapped[int] = mapped_column(BigInteger)


class BotPost(Base):
    """A post the bot wrote, and the answer it carries (reactions on it are feedback)."""

    __tablename__ = "bot_posts"
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    root_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    trigger_id: Mapped[str] = mapped_column(String(64), default="")
    user_id: Mapped[str] = mapped_column(String(64), default="")  # who asked
    kind: Mapped[str] = mapped_column(String(16), default="answer")  # answer | summary | notice
    answer_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class BotConversation(Base):
    """The conversation a DM with the bot continues (key: the DM channel and thread root)."""

    __tablename__ = "bot_conversations"
    key: Mapped[str] = mapped_column(String(140), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Job(Base):
    """A long admin job (a re-index from the live server), with progress and a resume cursor."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued running done failed cancelled
    progress: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    cursor: Mapped[str] = mapped_column(Text, default="{}")  # JSON: where to resume
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


# ---- personalisation (issue 10) -----------------------------------------------------------
class Reaction(Base):
    """An emoji reaction (what the reader endorses); ``channel_id`` is the post's."""

    __tablename__ = "reactions"
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    emoji_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    create_at: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_reactions_user", "user_id", "create_at"),)


class ProfileSettings(Base):
    """What a reader sets about their own profile (everything else is derived)."""

    __tablename__ = "profiles"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    personalize: Mapped[bool] = mapped_column(Boolean, default=True)
    interests: Mapped[str] = mapped_column(Text, default="")
    catchup: Mapped[bool] = mapped_column(Boolean, default=False)
    alerts_from_interests: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=0)


class ProfileSignal(Base):
    """One thing a post says about a reader (they wrote it, replied with it, reacted to it,
    were mentioned in it), keyed to the post's channel: read back only while the reader may
    read that channel. Kept up to date by the mirror as posts and reactions arrive."""

    __tablename__ = "profile_signals"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[int] = mapped_column(BigInteger, default=0)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    __table_args__ = (Index("ix_profile_signals_user_at", "user_id", "at"),)


class Watch(Base):
    __tablename__ = "watches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    topic: Mapped[str] = mapped_column(Text)
    from_profile: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)


class WatchAlert(Base):
    """An alert a watch raised for a thread: at most one per thread per watch (unique), sent
    by the bot from this outbox so that a restart neither loses nor repeats it."""

    __tablename__ = "watch_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    day: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16))  # pending sending sent skipped
    created_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (UniqueConstraint("watch_id", "thread_id", name="uq_watch_alerts_watch_thread"),
                      Index("ix_watch_alerts_user_day", "user_id", "day"))


class Catchup(Base):
    """A catch-up DM for a reader and channel on a (UTC) day: at most one."""

    __tablename__ = "catchups"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # sending sent skipped
    since: Mapped[int] = mapped_column(BigInteger, default=0)
    posts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
