"""The live permission mirror and post store: Mattermost objects (REST or WebSocket) in, rows out.

Everything here is synchronous and short: one transaction per change, so a WebSocket event
and a re-index job can interleave. A change to what a channel's chunks say (a post, an edit, a
deletion, a file, a type change) marks the channel dirty in the same transaction; the index
worker (:mod:`ingest.mattermost.worker`) re-indexes dirty channels in the background. A change
to who may read a channel (memberships, archiving, deactivation) needs no re-index:
permissions are computed at query time from these rows.

Ids are Mattermost's own, so permalinks point at the real posts."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rag.db import (
    Channel,
    ChannelMember,
    Database,
    File,
    Post,
    SyncCursor,
    Team,
    TeamMember,
    User,
)
from rag.profile import record_posts, record_reaction
from rag.util import now_ms

from .adopt import adopt_team, adopt_user, retire_derived_channel

log = logging.getLogger("openops.mattermost.mirror")

# Mattermost's own notices ("joined the channel", header changes): nothing to retrieve
SYSTEM_PREFIX = "system_"


def mention(username: str) -> re.Pattern:
    """``@username`` as Mattermost highlights it: not inside an e-mail or a longer name."""
    return re.compile(rf"(?<![\w.-])@{re.escape(username)}(?![\w-])", re.I)


def is_dm_with(user_id: str | None, channel_type: str | None, channel_name: str | None) -> bool:
    """Whether a channel is a direct message with ``user_id`` (a DM's name is ``a__b``)."""
    return bool(user_id) and channel_type == "D" and user_id in (channel_name or "").split("__")


def is_guest(roles: str | None) -> bool:
    return "system_guest" in (roles or "").split()


@dataclass
class MirrorStats:
    posts: int = 0
    files: int = 0
    dirty: set[str] = field(default_factory=set)


class Mirror:
    def __init__(self, db: Database, *, bot_user_id: str | None = None,
                 on_dirty: Callable[[], None] | None = None):
        self.db = db
        self.bot_user_id = bot_user_id
        self.bot_username: str | None = None
        self.on_dirty = on_dirty  # wakes the index worker

    # ---- helpers --------------------------------------------------------------------------
    def _dirty(self, s: Session, channel_ids: Iterable[str]) -> None:
        ids = list(set(channel_ids))
        if ids:
            s.execute(update(Channel).where(Channel.id.in_(ids)).values(
                dirty=True, dirty_seq=Channel.dirty_seq + 1))

    def _commit(self, s: Session, dirty: Iterable[str] = ()) -> None:
        dirty = list(dirty)
        self._dirty(s, dirty)
        s.commit()
        if dirty and self.on_dirty:
            self.on_dirty()

    # ---- users and teams ------------------------------------------------------------------
    def _user_row(self, s: Session, u: dict) -> User:
        row = s.get(User, u["id"])
        if row is None:
            adopt_user(s, u)  # the same username from a bulk export: it takes this id
            row = s.get(User, u["id"])
        if row is None:
            # a username freed by a deleted account may come back on a new id
            clash = s.scalar(select(User).where(User.username == u["username"],
                                                User.id != u["id"]))
            if clash is not None:
                clash.username = f"{clash.username}~{clash.id[:8]}"
                s.flush()
            row = User(id=u["id"], username=u["username"])
            s.add(row)
        row.username = u.get("username") or row.username
        for f in ("email", "first_name", "last_name", "nickname", "position", "locale"):
            setattr(row, f, u.get(f) or "")
        row.roles = u.get("roles") or "system_user"
        row.is_guest = is_guest(row.roles)
        row.is_bot = bool(u.get("is_bot"))
        row.delete_at = int(u.get("delete_at") or 0)
        return row

    def upsert_users(self, users: Iterable[dict]) -> None:
        with self.db.session() as s:
            for u in users:
                self._user_row(s, u)
                s.flush()
            self._commit(s)

    def upsert_user(self, u: dict) -> None:
        self.upsert_users([u])

    def ensure_users(self, s: Session, user_ids: Iterable[str]) -> None:
        """Placeholder rows for users not fetched yet (a post's author): names come later."""
        for uid in set(user_ids):
            if uid and s.get(User, uid) is None:
                s.add(User(id=uid, username=f"user-{uid}", roles=""))  # status unknown
        s.flush()

    def upsert_team(self, t: dict) -> None:
        with self.db.session() as s:
            adopt_team(s, t)  # the same team name from a bulk export: it takes this id
            row = s.get(Team, t["id"]) or Team(id=t["id"], name=t["name"])
            row.name = t.get("name") or row.name
            row.display_name = t.get("display_name") or row.name
            row.type = t.get("type") or "O"
            row.delete_at = int(t.get("delete_at") or 0)
            s.add(row)
            self._commit(s)

    def _replace_members(self, s: Session, model, where, key: str, make,
                         want: dict[str, str | None]) -> None:
        """Make the membership rows matching ``where`` exactly ``want`` (``key`` value ->
        roles, None keeping the roles a row has), touching only what changed. The one
        membership replacement: a team's or channel's members, or one user's view."""
        have = {getattr(m, key): m for m in s.scalars(select(model).where(where))}
        for k, m in have.items():
            if k not in want:
                s.delete(m)
        for k, roles in want.items():
            if k in have:
                if roles is not None:
                    have[k].roles = roles
            else:
                row = make(k)
                if roles is not None:
                    row.roles = roles
                s.add(row)

    def set_team_members(self, team_id: str, members: Iterable[dict]) -> None:
        """Replace a team's membership with ``members`` (TeamMember objects)."""
        want: dict[str, str | None] = {m["user_id"]: m.get("roles") or "team_user"
                                       for m in members if not int(m.get("delete_at") or 0)}
        with self.db.session() as s:
            self.ensure_users(s, want)
            self._replace_members(s, TeamMember, TeamMember.team_id == team_id, "user_id",
                                  lambda uid: TeamMember(team_id=team_id, user_id=uid), want)
            self._commit(s)

    def set_user_view(self, user_id: str, team_members: Iterable[dict],
                      channels: Iterable[dict]) -> None:
        """Replace what one user belongs to: their teams (TeamMember objects) and every
        channel they list (public channels of their teams stay readable through the team)."""
        channels = list(channels)
        for ch in channels:
            self.upsert_channel(ch)
        teams: dict[str, str | None] = {m["team_id"]: m.get("roles") or "team_user"
                                        for m in team_members if not int(m.get("delete_at") or 0)}
        with self.db.session() as s:
            self.ensure_users(s, [user_id])
            self._replace_members(s, TeamMember, TeamMember.user_id == user_id, "team_id",
                                  lambda tid: TeamMember(team_id=tid, user_id=user_id), teams)
            self._replace_members(s, ChannelMember, ChannelMember.user_id == user_id,
                                  "channel_id",
                                  lambda cid: ChannelMember(channel_id=cid, user_id=user_id),
                                  {c["id"]: None for c in channels})
            self._commit(s)

    def add_team_member(self, team_id: str, user_id: str, roles: str = "team_user") -> None:
        with self.db.session() as s:
            if s.get(Team, team_id) is None:
                s.add(Team(id=team_id, name=f"team-{team_id}"))
            self.ensure_users(s, [user_id])
            if s.get(TeamMember, (team_id, user_id)) is None:
                s.add(TeamMember(team_id=team_id, user_id=user_id, roles=roles))
            self._commit(s)

    def on_team(self, team_id: str, user_id: str) -> bool:
        with self.db.session() as s:
            return s.get(TeamMember, (team_id, user_id)) is not None

    def remove_team_member(self, team_id: str, user_id: str) -> None:
        with self.db.session() as s:
            s.execute(delete(TeamMember).where(TeamMember.team_id == team_id,
                                               TeamMember.user_id == user_id))
            self._commit(s)

    # ---- channels -------------------------------------------------------------------------
    def upsert_channel(self, c: dict) -> None:
        """Insert or update a channel (a Channel object). Two writers may insert the same new
        channel at once (a re-index walking a team while the WebSocket announces the channel,
        a DM the bot opens while ``direct_added`` arrives): the one that loses finds the row
        there and updates it."""
        try:
            self._upsert_channel(c)
        except IntegrityError:
            self._upsert_channel(c)

    def _upsert_channel(self, c: dict) -> None:
        with self.db.session() as s:
            dirty = []
            retired = retire_derived_channel(s, c, now_ms())  # a bulk export's copy of it
            if retired:
                dirty.append(retired)
            row = s.get(Channel, c["id"])
            if row is None:
                row = Channel(id=c["id"], chunk_count=0, index_version=0, dirty=False,
                              dirty_seq=0, type=c.get("type") or "O")
                s.add(row)
            elif row.type != (c.get("type") or row.type):
                dirty.append(row.id)  # chunk metadata carries the channel type
            row.team_id = c.get("team_id") or None
            row.type = c.get("type") or row.type
            row.name = c.get("name") or row.name or row.id
            row.display_name = c.get("display_name") or row.name
            row.purpose = c.get("purpose") or ""
            row.header = c.get("header") or ""
            if "delete_at" in c:
                row.delete_at = int(c.get("delete_at") or 0)
            s.flush()
            self._commit(s, dirty)

    def set_channel_deleted(self, channel_id: str, delete_at: int) -> None:
        with self.db.session() as s:
            row = s.get(Channel, channel_id)
            if row is not None:
                row.delete_at = delete_at
            self._commit(s)

    def set_channel_members(self, channel_id: str, members: Iterable[dict]) -> None:
        """Replace a channel's membership with ``members`` (ChannelMember objects)."""
        members = list(members)
        want: dict[str, str | None] = {m["user_id"]: m.get("roles") or "channel_user"
                                       for m in members}
        with self.db.session() as s:
            if s.get(Channel, channel_id) is None:
                return
            self.ensure_users(s, want)
            self._replace_members(s, ChannelMember, ChannelMember.channel_id == channel_id,
                                  "user_id",
                                  lambda uid: ChannelMember(channel_id=channel_id, user_id=uid),
                                  want)
            s.flush()
            # the server's ChannelMember.last_viewed_at is the truth (a catch-up reads the
            # previous view from here before an event moves it)
            viewed = {m["user_id"]: int(m["last_viewed_at"]) for m in members
                      if m.get("last_viewed_at") is not None}
            if viewed:
                for row in s.scalars(select(ChannelMember).where(
                        ChannelMember.channel_id == channel_id,
                        ChannelMember.user_id.in_(list(viewed)))):
                    row.last_viewed_at = viewed[row.user_id]
            self._commit(s)

    def add_channel_member(self, channel_id: str, user_id: str) -> bool:
        """False when the channel is unknown (the caller fetches it first)."""
        with self.db.session() as s:
            if s.get(Channel, channel_id) is None:
                return False
            self.ensure_users(s, [user_id])
            if s.get(ChannelMember, (channel_id, user_id)) is None:
                s.add(ChannelMember(channel_id=channel_id, user_id=user_id))
            self._commit(s)
        return True

    def viewed(self, channel_id: str, user_id: str, at: int) -> int | None:
        """The member viewed the channel at ``at``: move ``last_viewed_at`` there (never back)
        and return the previous view (0: never), or None when the mirror has no such member."""
        with self.db.session() as s:
            row = s.get(ChannelMember, (channel_id, user_id))
            if row is None:
                return None
            prev = int(row.last_viewed_at or 0)
            if at > prev:
                row.last_viewed_at = at
                s.commit()
            return prev

    def remove_channel_member(self, channel_id: str, user_id: str) -> None:
        with self.db.session() as s:
            s.execute(delete(ChannelMember).where(ChannelMember.channel_id == channel_id,
                                                  ChannelMember.user_id == user_id))
            self._commit(s)

    def known_channel(self, channel_id: str) -> bool:
        with self.db.session() as s:
            return s.get(Channel, channel_id) is not None

    # ---- posts ----------------------------------------------------------------------------
    def wants(self, p: dict) -> bool:
        """Whether a post is content: not a system notice, not the bot's own answer, not a
        question to the bot (a mention of it): those are conversations, kept as such."""
        if str(p.get("type") or "").startswith(SYSTEM_PREFIX):
            return False
        if self.bot_user_id and p.get("user_id") == self.bot_user_id:
            return False
        return not (self.bot_username
                    and mention(self.bot_username).search(p.get("message") or ""))

    def apply_posts(self, posts: Iterable[dict], *, move_cursor: bool = True) -> MirrorStats:
        """Insert, edit or delete posts (Post objects as the REST API and events give them).
        ``move_cursor=False``: a walk that moves the channel's cursor itself, once done."""
        posts = list(posts)  # read twice: the posts, then their reactions
        stats = MirrorStats()
        changed: list[str] = []
        with self.db.session() as s:
            cursors: dict[str, int] = {}
            for p in posts:
                cid = p["channel_id"]
                changed_at = max(int(p.get("update_at") or 0), int(p.get("create_at") or 0),
                                 int(p.get("delete_at") or 0))
                cursors[cid] = max(cursors.get(cid, 0), changed_at)
                ch = s.get(Channel, cid)
                if ch is None:
                    log.warning("post %s in channel %s the mirror does not know yet: skipped",
                                p.get("id"), cid)
                    continue
                if not self.wants(p) or self._bot_dm(ch):
                    # a question to the bot is a conversation, not content; one that was
                    # content before an edit leaves the index
                    row = s.get(Post, p["id"])
                    if row is not None and not row.delete_at:
                        row.delete_at = changed_at or now_ms()
                        stats.dirty.add(cid)
                        changed.append(row.id)
                    continue
                if self._apply_post(s, p):
                    stats.posts += 1
                    stats.dirty.add(cid)
                    changed.append(p["id"])
            # what the posts say about their authors and the people they mention, and the
            # reactions REST posts carry (``metadata.reactions``; removals come as events)
            record_posts(s, [s.get(Post, i) for i in changed])
            for p in posts:
                for r in ((p.get("metadata") or {}).get("reactions") or []):
                    if isinstance(r, dict) and r.get("user_id") and r.get("emoji_name") \
                            and r.get("user_id") != self.bot_user_id:
                        record_reaction(s, r["user_id"], p["id"], r["emoji_name"], added=True,
                                        at=int(r.get("create_at") or 0) or None)
            for cid, at in cursors.items() if move_cursor else ():
                self._advance(s, cid, at)
            self._commit(s, stats.dirty)
        return stats

    def _advance(self, s: Session, channel_id: str, at: int) -> None:
        cur = s.get(SyncCursor, channel_id)
        if cur is None:
            s.add(SyncCursor(channel_id=channel_id, update_at=at))
        elif at > cur.update_at:
            cur.update_at = at

    def advance_cursor(self, channel_id: str, at: int) -> None:
        """Move the channel's cursor to ``at`` (never back): everything changed up to then
        is applied."""
        if at <= 0:
            return
        with self.db.session() as s:
            if s.get(Channel, channel_id) is not None:
                self._advance(s, channel_id, at)
                s.commit()

    def _bot_dm(self, ch: Channel) -> bool:
        return is_dm_with(self.bot_user_id, ch.type, ch.name)

    def is_bot_dm(self, channel_id: str) -> bool:
        """Whether the channel is a DM with the bot (False when the mirror does not know it)."""
        with self.db.session() as s:
            ch = s.get(Channel, channel_id)
            return ch is not None and self._bot_dm(ch)

    def channel_type(self, channel_id: str) -> str | None:
        with self.db.session() as s:
            ch = s.get(Channel, channel_id)
            return ch.type if ch else None

    def _apply_post(self, s: Session, p: dict) -> bool:
        self.ensure_users(s, [p["user_id"]])
        values = dict(
            channel_id=p["channel_id"], root_id=p.get("root_id") or "", user_id=p["user_id"],
            message=p.get("message") or "", type=p.get("type") or "",
            create_at=int(p["create_at"]), edit_at=int(p.get("edit_at") or 0),
            delete_at=int(p.get("delete_at") or 0))
        row = s.get(Post, p["id"])
        if row is None:
            s.add(Post(id=p["id"], **values))
            return True
        if all(getattr(row, k) == v for k, v in values.items()):
            return False
        for k, v in values.items():
            setattr(row, k, v)
        if values["delete_at"]:
            gone = [row.id]
            if not values["root_id"]:
                # deleting a root deletes its thread (Mattermost sends one post_deleted, for
                # the root): its replies leave the mirror, and so the index, with it
                replies = select(Post.id).where(Post.root_id == row.id, Post.delete_at == 0)
                gone += list(s.scalars(replies))
                s.execute(update(Post).where(Post.id.in_(gone[1:])).values(
                    delete_at=values["delete_at"]))
            s.execute(update(File).where(File.post_id.in_(gone), File.delete_at == 0).values(
                delete_at=values["delete_at"]))
        return True

    def apply_reaction(self, r: dict, *, added: bool) -> None:
        """A Reaction object from ``reaction_added`` / ``reaction_removed``: kept, and what it
        says about the reader (what they endorse) goes to their profile."""
        if not (r.get("user_id") and r.get("post_id") and r.get("emoji_name")):
            return
        with self.db.session() as s:
            if self.bot_user_id and r["user_id"] == self.bot_user_id:
                return
            record_reaction(s, r["user_id"], r["post_id"], r["emoji_name"], added=added,
                            at=int(r.get("create_at") or 0) or None)
            s.commit()

    def delete_post(self, p: dict) -> MirrorStats:
        p = {**p, "delete_at": int(p.get("delete_at") or 0) or now_ms()}
        return self.apply_posts([p])

    def live_posts_not_in(self, channel_id: str, seen: set[str],
                          before_ms: int) -> list[tuple[str, int]]:
        """(id, create_at) of the channel's live posts created before ``before_ms`` that
        ``seen`` lacks."""
        with self.db.session() as s:
            rows = s.execute(select(Post.id, Post.create_at).where(
                Post.channel_id == channel_id, Post.delete_at == 0, Post.create_at < before_ms))
            return [(i, int(at)) for i, at in rows if i not in seen]

    def mark_deleted(self, post_ids: list[str]) -> MirrorStats:
        """Posts the server no longer has (found by a walk, confirmed one by one)."""
        now = now_ms()
        with self.db.session() as s:
            rows = list(s.scalars(select(Post).where(Post.id.in_(post_ids))))
            gone = [{"id": r.id, "channel_id": r.channel_id, "root_id": r.root_id,
                     "user_id": r.user_id, "message": r.message, "type": r.type,
                     "create_at": r.create_at, "edit_at": r.edit_at, "delete_at": now,
                     "update_at": 0} for r in rows]
        return self.apply_posts(gone, move_cursor=False) if gone else MirrorStats()

    def cursor(self, channel_id: str) -> int:
        with self.db.session() as s:
            row = s.get(SyncCursor, channel_id)
            return row.update_at if row else 0

    def cursors(self) -> dict[str, int]:
        with self.db.session() as s:
            return {c.channel_id: c.update_at for c in s.scalars(select(SyncCursor))}

    # ---- files ----------------------------------------------------------------------------
    def has_file(self, file_id: str) -> bool:
        with self.db.session() as s:
            f = s.get(File, file_id)
            return f is not None and not f.error

    def apply_file(self, info: dict, post: dict, text: str, kind: str, error: str = "") -> None:
        with self.db.session() as s:
            row = s.get(File, info["id"]) or File(id=info["id"], post_id=post["id"],
                                                  channel_id=post["channel_id"],
                                                  name=info.get("name") or info["id"])
            row.post_id, row.channel_id = post["id"], post["channel_id"]
            row.name = info.get("name") or row.name
            row.text, row.kind, row.error = text, kind, error
            row.create_at = int(info.get("create_at") or post.get("create_at") or 0)
            row.delete_at = int(info.get("delete_at") or post.get("delete_at") or 0)
            s.add(row)
            self._commit(s, [post["channel_id"]] if not error else [])
