"""A store loaded from a bulk export, then synced live: the export carries names, so bulk ingest
derived the ids (:mod:`ingest.ids`); the server has its own ids for the same team, channel and
user names. The live sync adopts what the export made instead of adding a second copy:

* a team or a user with a derived id takes the server's id (the rows that point at it follow:
  memberships, channels, posts, conversations, answers, feedback, bot rows; the append-only
  audit log keeps the id that acted then);
* a channel with a derived id is retired once the server's channel of that team and name (or
  that DM's two members) is known: its posts and files are marked deleted and its members
  dropped, so the index empties it, and the live sync reads the channel's real posts (with real
  ids, so permalinks work) in its place. Nothing is duplicated, nothing readable is widened.

Only rows whose id is exactly the derived one are touched: an id the server gave is never
re-keyed."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rag.db import (
    Answer,
    BotConversation,
    BotPost,
    Channel,
    ChannelMember,
    Conversation,
    Feedback,
    File,
    Post,
    Team,
    TeamMember,
    User,
)

from .. import ids

log = logging.getLogger("openops.mattermost.adopt")


def _take(s: Session, model, column: str, old: str) -> list[dict]:
    """Remove the membership rows whose ``column`` is ``old``; what they held, to give back."""
    rows = list(s.scalars(select(model).where(getattr(model, column) == old)))
    held = [{"team_id" if model is TeamMember else "channel_id":
             r.team_id if model is TeamMember else r.channel_id,
             "user_id": r.user_id, "roles": r.roles} for r in rows]
    s.execute(delete(model).where(getattr(model, column) == old))
    return held


def _give(s: Session, model, column: str, new: str, held: list[dict]) -> None:
    for values in held:
        s.add(model(**{**values, column: new}))


def adopt_team(s: Session, team: dict) -> None:
    """Before the server's team is stored: re-key the export's team of that name."""
    name, real = team.get("name") or "", team["id"]
    old = s.scalar(select(Team).where(Team.name == name, Team.id != real))
    if old is None or old.id != ids.team_id(name) or s.get(Team, real) is not None:
        return
    log.info("team %s: adopting the bulk export's copy (%s) as %s", name, old.id, real)
    members = _take(s, TeamMember, "team_id", old.id)
    old.name = f"{name}~{old.id[:8]}"  # out of the way of the unique name
    s.flush()
    s.add(Team(id=real, name=name, display_name=old.display_name, type=old.type,
               delete_at=old.delete_at))
    s.flush()
    _give(s, TeamMember, "team_id", real, members)
    s.execute(update(Channel).where(Channel.team_id == old.id).values(team_id=real))
    s.delete(old)
    s.flush()


def adopt_user(s: Session, user: dict) -> None:
    """Before the server's user is stored: re-key the export's user of that username."""
    name, real = user.get("username") or "", user["id"]
    old = s.scalar(select(User).where(User.username == name, User.id != real))
    if old is None or old.id != ids.user_id(name) or s.get(User, real) is not None:
        return
    log.info("user @%s: adopting the bulk export's copy (%s) as %s", name, old.id, real)
    teams = _take(s, TeamMember, "user_id", old.id)
    chans = _take(s, ChannelMember, "user_id", old.id)
    old.username = f"{name}~{old.id[:8]}"
    s.flush()
    s.add(User(id=real, username=name, roles=old.roles, is_guest=old.is_guest,
               is_bot=old.is_bot, delete_at=old.delete_at))
    s.flush()
    _give(s, TeamMember, "user_id", real, teams)
    _give(s, ChannelMember, "user_id", real, chans)
    # the audit log is append-only: its rows keep the id that acted at the time
    for model in (Post, Conversation, Answer, Feedback, BotPost, BotConversation):
        s.execute(update(model).where(model.user_id == old.id).values(user_id=real))
    s.delete(old)
    s.flush()


def _derived_channel_id(s: Session, c: dict) -> str | None:
    if c.get("type") in ("O", "P") and c.get("team_id"):
        team = s.get(Team, c["team_id"])
        return ids.channel_id(team.name, c.get("name") or "") if team else None
    if c.get("type") == "D":
        names = []
        for uid in (c.get("name") or "").split("__"):
            u = s.get(User, uid)
            if u is None:
                return None
            names.append(u.username)
        return ids.direct_channel_id(names)
    return None  # a group message's members are not in the channel object


def retire_derived_channel(s: Session, c: dict, now: int) -> str | None:
    """Before the server's channel is stored: empty the export's copy of it (its posts and
    files deleted, its members dropped); the id of the channel to re-index, or None."""
    if s.get(Channel, c["id"]) is not None:
        return None
    old_id = _derived_channel_id(s, c)
    old = s.get(Channel, old_id) if old_id and old_id != c["id"] else None
    if old is None or old.delete_at:
        return None
    log.info("channel %s: the live channel %s replaces the bulk export's copy %s",
             c.get("name"), c["id"], old.id)
    s.execute(update(Post).where(Post.channel_id == old.id, Post.delete_at == 0)
              .values(delete_at=now))
    s.execute(update(File).where(File.channel_id == old.id, File.delete_at == 0)
              .values(delete_at=now))
    s.execute(delete(ChannelMember).where(ChannelMember.channel_id == old.id))
    old.delete_at = now
    old.name = f"{old.name}~bulk"
    s.flush()
    return old.id
