"""Who may read what, computed at query time from the mirror.

Every retrieval path asks :func:`readable_scope` and nothing else. The rules follow Mattermost:

* unknown or deactivated user: nothing;
* public channel (O): every non-guest member of its team; a guest only when a channel member;
* private channel (P): its members (who must still belong to the team);
* direct and group messages (D, G): their participants;
* archived channel or deleted team: nobody, unless ``include_archived`` (then as before);
* a channel the mirror does not know: nobody;
* a user whose roles the mirror does not know (a placeholder row for a member or author not
  fetched yet): reads as a guest, the most restricted reader, and counts as one in audiences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .db import Channel, ChannelMember, Database, Team, TeamMember, User
from .errors import NotFound


@dataclass(frozen=True)
class Scope:
    """The channels one user may read right now, with their chunk counts."""

    user_id: str | None
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (chunks, version)
    public_team_ids: frozenset[str] = frozenset()

    @property
    def channel_ids(self) -> frozenset[str]:
        return frozenset(self.channels)

    @property
    def chunk_count(self) -> int:
        return sum(c for c, _ in self.channels.values())

    def allows(self, channel_id: str) -> bool:
        return channel_id in self.channels

    @property
    def empty(self) -> bool:
        return not self.channels


def narrow(scope: Scope, audience: Scope) -> Scope:
    """The part of a user's scope that an audience (another reader, or everyone who reads
    where an answer is posted) may read too."""
    return Scope(user_id=scope.user_id,
                 channels={c: v for c, v in scope.channels.items() if audience.allows(c)},
                 public_team_ids=scope.public_team_ids & audience.public_team_ids)


def status_unknown(user: User) -> bool:
    """No roles known (the mirror's placeholder row): guest or not, nobody can tell."""
    return not (user.roles or "").strip()


def restricted(user: User) -> bool:
    """Reads as a guest: a guest, or a user whose guest status is unknown (unknown means
    private)."""
    return bool(user.is_guest) or status_unknown(user)


def find_user(session: Session, who: str) -> User | None:
    """A user by username (with or without a leading @) or by id."""
    who = who.strip()
    name = who.removeprefix("@")
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        user = session.get(User, who)
    return user


def unreadable(what: str, key: str) -> str:
    """One message for what does not exist and what the asker may not read: telling them
    apart would tell whether a post, channel, file, answer or conversation exists."""
    return f"{what} {key!r} does not exist or you may not read it"


def known_user(session: Session, who: str) -> User:
    """:func:`find_user`, or a NotFound naming the fix."""
    user = find_user(session, who)
    if user is None:
        raise NotFound(f"unknown user {who!r}: give a username or user id the mirror knows")
    return user


def user_and_scope(db: Database, who: str, *, include_archived: bool = False
                   ) -> tuple[User, Scope]:
    """The user and what they may read now, in one session (it is on the first-token path)."""
    with db.session() as s:
        user = known_user(s, who)
        return user, readable_scope(s, user.id, include_archived=include_archived)


def readable_scope(session: Session, user_id: str | None, *, include_archived: bool = False) -> Scope:
    if not user_id:
        return Scope(user_id=None)
    user = session.get(User, user_id)
    if user is None or user.delete_at > 0:
        return Scope(user_id=user_id)

    team_q = select(TeamMember.team_id).join(Team, Team.id == TeamMember.team_id).where(
        TeamMember.user_id == user_id
    )
    if not include_archived:
        team_q = team_q.where(Team.delete_at == 0)
    team_ids = set(session.scalars(team_q))
    guest = restricted(user)

    member_ids = select(ChannelMember.channel_id).where(ChannelMember.user_id == user_id)
    conditions = [
        # direct and group messages: participants only
        and_(Channel.type.in_(("D", "G")), Channel.id.in_(member_ids)),
    ]
    if team_ids:
        team_list = list(team_ids)
        # private channels (and, for guests, public ones) need membership and the team
        restricted_types = ("O", "P") if guest else ("P",)
        conditions.append(
            and_(
                Channel.type.in_(restricted_types),
                Channel.team_id.in_(team_list),
                Channel.id.in_(member_ids),
            )
        )
        if not guest:
            conditions.append(and_(Channel.type == "O", Channel.team_id.in_(team_list)))
    q = select(Channel.id, Channel.chunk_count, Channel.index_version).where(or_(*conditions))
    if not include_archived:
        q = q.where(Channel.delete_at == 0)
    channels = {cid: (count, version) for cid, count, version in session.execute(q)}
    return Scope(
        user_id=user_id,
        channels=channels,
        public_team_ids=frozenset() if guest else frozenset(team_ids),
    )


def channel_readers(session: Session, channel_id: str, *, include_archived: bool = False
                    ) -> set[str]:
    """Every active, non-bot user who may read the channel now (the same rules as
    :func:`readable_scope`, seen from the channel's side), and every one who might: a user of
    unknown status on the team of a public channel counts, as a non-guest would."""
    ch = session.get(Channel, channel_id)
    if ch is None or (ch.delete_at and not include_archived):
        return set()
    active = select(User.id).where(User.delete_at == 0, User.is_bot.is_(False))
    members = set(session.scalars(select(ChannelMember.user_id).where(
        ChannelMember.channel_id == channel_id, ChannelMember.user_id.in_(active))))
    if ch.type in ("D", "G"):
        return members
    team = session.get(Team, ch.team_id) if ch.team_id else None
    if team is None or (team.delete_at and not include_archived):
        return set()
    on_team = set(session.scalars(select(TeamMember.user_id).where(
        TeamMember.team_id == ch.team_id, TeamMember.user_id.in_(active))))
    if ch.type == "P":
        return members & on_team
    guests = set(session.scalars(select(User.id).where(User.id.in_(list(on_team)),
                                                       User.is_guest.is_(True)))) if on_team else set()
    return (on_team - guests) | (members & guests)


def _slices(items: list[str], size: int = 5000) -> list[list[str]]:
    """Bound the IN lists (SQLite takes at most 32,766 parameters)."""
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def _member_counts(session: Session, model, key, channel_or_team_ids: list[str],
                   users: list[str]) -> dict[str, int]:
    """How many of ``users`` are members of each given channel (or team)."""
    from sqlalchemy import func

    out: dict[str, int] = {}
    if not channel_or_team_ids or not users:
        return out
    for ids in _slices(channel_or_team_ids):
        for who in _slices(users):
            q = (select(key, func.count()).where(key.in_(ids), model.user_id.in_(who))
                 .group_by(key))
            for k, n in session.execute(q):
                out[k] = out.get(k, 0) + int(n)
    return out


def audience_scope(session: Session, channel_id: str, *, include_archived: bool = False) -> Scope:
    """What everyone who may read ``channel_id`` may read: the scope of a reply posted there.

    A public channel's audience is its team (narrowed by any guest members), a private channel's
    or a group message's its members; the result is the intersection of their scopes, so a
    reply built from it shows nobody anything they could not already read. A channel X is kept
    when every reader R of ``channel_id`` is a reader of X: for a public X, all of R are on its
    team and R's guests are its members; for a private X, all of R are its members and on its
    team; for a direct or group message, all of R are its members. A handful of grouped counts
    decide it, however many channels the readers share."""
    readers = channel_readers(session, channel_id, include_archived=include_archived)
    if not readers:
        return Scope(user_id=None)
    # start from one reader's scope: the audience can only be narrower
    base = readable_scope(session, min(readers), include_archived=include_archived)
    here = session.get(Channel, channel_id)
    if here is not None and channel_id not in base.channels:
        # the place itself: whoever sees the reply reads it there (that reader is one who
        # might read it, a user of unknown status, reading as a guest)
        base = Scope(user_id=base.user_id, public_team_ids=base.public_team_ids,
                     channels={**base.channels,
                               channel_id: (here.chunk_count, here.index_version)})
    users = sorted(readers)
    rows: dict[str, Channel] = {}
    for ids in _slices(list(base.channels)):
        rows.update({c.id: c for c in session.scalars(select(Channel).where(Channel.id.in_(ids)))})
    # readers who read as guests: guests, and users of unknown status (who might be guests
    # that are not members of a public channel, and who see the reply all the same)
    guests = sorted(g for ids in _slices(users) for g in session.scalars(
        select(User.id).where(User.id.in_(ids),
                              or_(User.is_guest.is_(True), User.roles == ""))))
    teams = sorted({c.team_id for c in rows.values() if c.team_id})
    on_team = _member_counts(session, TeamMember, TeamMember.team_id, teams, users)
    covered = {t for t in teams if on_team.get(t, 0) == len(users)}
    need = sorted(cid for cid, c in rows.items() if c.type != "O" or guests)
    members = _member_counts(session, ChannelMember, ChannelMember.channel_id, need, users)
    guest_members = _member_counts(session, ChannelMember, ChannelMember.channel_id,
                                   sorted(cid for cid, c in rows.items() if c.type == "O"),
                                   guests) if guests else {}
    kept = {}
    for cid, info in base.channels.items():
        c = rows.get(cid)
        if c is None:
            continue
        if c.type in ("D", "G"):
            ok = members.get(cid, 0) == len(users)
        elif c.type == "P":
            ok = c.team_id in covered and members.get(cid, 0) == len(users)
        else:
            ok = c.team_id in covered and guest_members.get(cid, 0) == len(guests)
        if ok or cid == channel_id:
            kept[cid] = info
    return Scope(user_id=None, channels=kept)
