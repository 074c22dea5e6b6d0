"""The reader's profile: what Mattermost knows about a person, read back only from what they may
read now, to shape summaries, catch-ups and alerts for them.

Signals come from the mirror: identity (position, locale), channel memberships (with the
channels' purposes and headers), what the reader writes (threads started, replies), what they
react to (what they endorse), the posts that @-mention them, and the interests they state
themselves. The post-derived ones are stored (``profile_signals``) as posts and reactions reach
the mirror, live or from a bulk export, each keyed to its post's channel; memberships, position
and stated interests are read fresh. Every read goes through a :class:`Scope`: a signal from a
channel the reader (or, for a summary shown to someone else, both people) may not read now is
not part of the profile, so revocation is immediate here too.

Two forms: ``Profile.text()`` (a short description within a token budget, for a prompt) and
``Profile.vector`` (a recency- and kind-weighted mix of the signals' embeddings, for ranking)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .db import Channel, ChannelMember, Post, ProfileSettings, ProfileSignal, Reaction, Team, User
from .errors import InvalidRequest
from .permissions import Scope
from .util import now_ms, permalink
from .watches import sync_profile_watches

log = logging.getLogger("openops.profile")

# how much each kind of signal says about what matters to the reader
KIND_WEIGHT = {"interest": 3.0, "position": 2.0, "authored": 1.0, "reply": 0.8,
               "reaction": 0.7, "mention": 0.6, "channel": 0.5}
POST_KINDS = ("authored", "reply", "reaction", "mention")
CENTRING = 1.0  # how much of the workspace's common direction a profile drops
SIGNAL_CHARS = 400  # of a post kept as a signal's text (and embedded)
MAX_SIGNALS = 300  # newest post-derived signals read per profile
MENTION = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9._\-]{0,63})", re.I)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*[A-Za-z0-9]|[A-Za-z]")
STOP = frozenset("""
a about above after again against all also am an and any are aren as at be because been before
being below between both but by can cannot could did do does doing done don down during each few
for from further get got had has have having he her here hers herself him himself his how i if in
into is it its itself just let lets like ll me more most my myself need no nor not now of off on
once one only or other our ours ourselves out over own please re same she should so some such
than thank thanks that the their theirs them themselves then there these they this those through
to too under until up us ve very was we were what when where which while who whom why will with
would yes yet you your yours yourself yourselves ok okay yeah sure maybe still even much many
today tomorrow yesterday week weeks day days next last new good great lot bit think know want
going make sounds see look looks said say says way thing things time right well really already
https http www com utc cet cest gmt am pm eod asap fyi btw lgtm
jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july
august september october november december mon tue wed thu fri sat sun monday tuesday wednesday
thursday friday saturday sunday morning afternoon evening tonight
keep stays stay plan plans agree agreed works work working sounds fine nice cool hey hi hello
""".split())


def interests_list(text: str) -> list[str]:
    """Stated interests: comma, semicolon or line separated phrases."""
    return [p.strip() for p in re.split(r"[,;\n]", text or "") if p.strip()]


@dataclass
class Signal:
    kind: str
    text: str
    weight: float
    source: str  # the post's permalink (or ``post:<id>``), ``~team/channel``, or "profile"
    channel_id: str = ""
    key: tuple = ()  # the stored row's key, to keep its vector
    vector: np.ndarray | None = None

    def public(self) -> dict:
        text = self.text if len(self.text) <= 200 else self.text[:199].rstrip() + "…"
        return {"kind": self.kind, "text": text, "weight": round(self.weight, 3),
                "source": self.source}


@dataclass
class Profile:
    user_id: str
    username: str
    name: str
    position: str
    locale: str
    personalize: bool
    interests: str
    catchup: bool
    alerts: bool
    signals: list[Signal] = field(default_factory=list)
    vector: np.ndarray | None = None
    keywords: list[str] = field(default_factory=list)

    @property
    def involve(self) -> list[str]:
        """Strings that name the reader in a text."""
        first = self.name.split()[0] if self.name.split() else ""
        return [s for s in (f"@{self.username}", self.name, first) if s and len(s) > 2]

    def words(self) -> str:
        """The reader's interests in words, for lexical matching: stated interests, position,
        what they write about."""
        return " ".join([*interests_list(self.interests), self.position, *self.keywords])

    def topics(self, n: int = 3) -> list[str]:
        """What the reader cares about, in words: stated interests first, then the channels
        they are most active in, then what they write about most."""
        out: list[str] = []
        for t in interests_list(self.interests):
            if t.lower() not in {o.lower() for o in out}:
                out.append(t)
        channels = sorted((s for s in self.signals if s.kind == "channel"),
                          key=lambda s: -s.weight)
        for s in channels[:2]:
            name = s.source.rsplit("/", 1)[-1]
            if name not in out and name not in ("town-square", "off-topic"):
                out.append(name)
        for k in self.keywords:
            if len(out) >= n + 2:
                break
            if k not in out:
                out.append(k)
        return out[:n]

    @property
    def why(self) -> str:
        """One line: how a summary for this reader was shaped."""
        parts = []
        if self.position:
            parts.append(f"as {self.position}")
        topics = self.topics()
        if topics:
            parts.append("interested in " + (topics[0] if len(topics) == 1 else
                                            ", ".join(topics[:-1]) + " and " + topics[-1]))
        return "for you" + (" " + ", ".join(parts) if parts else "")

    def text(self, budget_tokens: int = 160) -> str:
        """A short description of the reader for a prompt, within ``budget_tokens``."""
        from .generation import tokens

        lines = [f"Reader: {self.name} (@{self.username})"
                 + (f", {self.position}" if self.position else "") + "."]
        stated = interests_list(self.interests)
        if stated:
            lines.append("Says they are interested in: " + "; ".join(stated) + ".")
        ch = [s for s in sorted(self.signals, key=lambda s: -s.weight) if s.kind == "channel"]
        ch = [s for s in ch if s.source.rsplit("/", 1)[-1] not in ("town-square", "off-topic")]
        if ch:
            lines.append("Most active in: " + ", ".join(s.source.rsplit("/", 1)[-1]
                                                        for s in ch[:5]) + ".")
        if self.keywords:
            lines.append("Often writes and reacts about: " + ", ".join(self.keywords[:12]) + ".")
        out: list[str] = []
        used = 0
        for line in lines:
            cost = tokens(line)
            if used + cost > budget_tokens:
                break
            out.append(line)
            used += cost
        return "\n".join(out)

    def public(self, limit: int = 50) -> dict:
        return {"user": self.username, "personalize": self.personalize,
                "interests": self.interests, "catchup": self.catchup, "alerts": self.alerts,
                "signals": [s.public() for s in self.signals[:limit]]}


def decay(at: int, now: int, half_life_days: float) -> float:
    """Recency weight in (0.05, 1]: halves every ``half_life_days``, never quite vanishes."""
    if not at or half_life_days <= 0:
        return 1.0
    age_days = max(0.0, (now - at) / 86_400_000)
    return max(0.05, 0.5 ** (age_days / half_life_days))


# ---- keeping the stored signals up to date --------------------------------------------------
def record_posts(s: Session, posts: Iterable[Post], *, wanted: Callable[[Post], bool] | None = None
                 ) -> None:
    """(Re)derive the signals of ``posts`` (new, edited or deleted rows in session ``s``):
    the author wrote it (``authored`` for a thread's root, ``reply`` for a reply), and each
    @-mentioned known user was mentioned in it. A deleted post takes its signals with it."""
    posts = [p for p in posts if p is not None]
    if not posts:
        return
    ids = [p.id for p in posts]
    s.execute(delete(ProfileSignal).where(ProfileSignal.source.in_(ids),
                                          ProfileSignal.kind.in_(("authored", "reply", "mention"))))
    dead = [p.id for p in posts if p.delete_at]
    if dead:
        s.execute(delete(ProfileSignal).where(ProfileSignal.source.in_(dead)))
    live = [p for p in posts if not p.delete_at and (p.message or "").strip()
            and (wanted is None or wanted(p))]
    names = {m.lower() for p in live for m in MENTION.findall(p.message)}
    by_name = {}
    if names:
        by_name = {u.username.lower(): u.id for u in s.scalars(
            select(User).where(User.username.in_(sorted(names))))}
    seen: set[tuple[str, str, str]] = set()
    for p in live:
        text = p.message.strip()[:SIGNAL_CHARS]
        rows = [(p.user_id, "reply" if p.root_id else "authored")]
        rows += [(by_name[m.lower()], "mention") for m in MENTION.findall(p.message)
                 if m.lower() in by_name and by_name[m.lower()] != p.user_id]
        for uid, kind in rows:
            if (uid, kind, p.id) in seen:
                continue
            seen.add((uid, kind, p.id))
            s.add(ProfileSignal(user_id=uid, kind=kind, source=p.id, channel_id=p.channel_id,
                                text=text, at=p.edit_at or p.create_at))
    s.flush()


def record_reaction(s: Session, user_id: str, post_id: str, emoji: str, *, added: bool,
                    at: int | None = None) -> None:
    """A reaction added or removed: the mirror's row and the reader's ``reaction`` signal
    (the text they endorsed). Reactions to posts the mirror does not hold are ignored."""
    post = s.get(Post, post_id)
    if post is None:
        return
    row = s.get(Reaction, (post_id, user_id, emoji))
    if added and row is None:
        s.add(Reaction(post_id=post_id, user_id=user_id, emoji_name=emoji,
                       channel_id=post.channel_id, create_at=at or now_ms()))
    elif not added and row is not None:
        s.delete(row)
    s.flush()
    left = s.scalar(select(Reaction.post_id).where(Reaction.post_id == post_id,
                                                   Reaction.user_id == user_id).limit(1))
    sig = s.get(ProfileSignal, (user_id, "reaction", post_id))
    if left and sig is None and not post.delete_at and post.user_id != user_id:
        s.add(ProfileSignal(user_id=user_id, kind="reaction", source=post_id,
                            channel_id=post.channel_id, text=post.message.strip()[:SIGNAL_CHARS],
                            at=at or now_ms()))
    elif not left and sig is not None:
        s.delete(sig)
    s.flush()


def rebuild_signals(s: Session, channel_ids: Iterable[str] | None = None) -> int:
    """Derive every stored signal of the posts and reactions in ``channel_ids`` (default: all)
    from the mirror: the bulk ingest and re-index jobs call this for the channels they wrote."""
    q = select(Post)
    rq = select(Reaction)
    if channel_ids is not None:
        cids = sorted(set(channel_ids))
        if not cids:
            return 0
        q = q.where(Post.channel_id.in_(cids))
        rq = rq.where(Reaction.channel_id.in_(cids))
    n = 0
    posts = list(s.scalars(q))
    for i in range(0, len(posts), 2000):
        record_posts(s, posts[i:i + 2000])
        n += len(posts[i:i + 2000])
    for r in list(s.scalars(rq)):
        record_reaction(s, r.user_id, r.post_id, r.emoji_name, added=True, at=r.create_at)
    return n


# ---- reading a profile ----------------------------------------------------------------------
class Profiles:
    """Profile settings and profiles, read through a scope."""

    def __init__(self, settings, db, embedder: Callable[[], Any],
                 index: Callable[[], Any] | None = None):
        self.settings = settings
        self.db = db
        self._embedder = embedder
        self._index = index  # the chunk index, for the centroid profiles are centred on
        self._vectors: dict[str, np.ndarray] = {}  # texts read fresh (channels, position, ...)

    def settings_of(self, s: Session, user_id: str) -> ProfileSettings:
        row = s.get(ProfileSettings, user_id)
        return row if row is not None else ProfileSettings(
            user_id=user_id, personalize=True, interests="", catchup=False,
            alerts_from_interests=False, updated_at=0)

    def update(self, user_id: str, *, interests: str | None = None,
               personalize: bool | None = None, catchup: bool | None = None,
               alerts: bool | None = None) -> ProfileSettings:
        """Set what the reader may set; the rest of the profile is derived."""
        if interests is not None and len(interests) > 2000:
            raise InvalidRequest("interests: at most 2,000 characters")
        with self.db.session() as s:
            row = s.get(ProfileSettings, user_id)
            if row is None:
                row = ProfileSettings(user_id=user_id, personalize=True, interests="",
                                      catchup=False, alerts_from_interests=False)
                s.add(row)
            if interests is not None:
                row.interests = ", ".join(interests_list(interests))
            if personalize is not None:
                row.personalize = personalize
            if catchup is not None:
                row.catchup = catchup
            if alerts is not None:
                row.alerts_from_interests = alerts
            row.updated_at = now_ms()
            # interests with alerts on are watches too (rag/watches.py), kept in step here
            sync_profile_watches(s, user_id, row.interests, row.alerts_from_interests)
            s.commit()
            return row

    def build(self, user: User, scope: Scope, *, vector: bool = True,
              private: bool = True) -> Profile:
        """The profile of ``user`` as far as ``scope`` allows (the reader's own scope, or for a
        summary someone else will read, the intersection of both). ``private=False`` leaves
        out what only the reader should see (their stated interests' text)."""
        now = now_ms()
        half = self.settings.profile_half_life_days
        with self.db.session() as s:
            ps = self.settings_of(s, user.id)
            stored = [r for r in s.scalars(
                select(ProfileSignal).where(ProfileSignal.user_id == user.id)
                .order_by(ProfileSignal.at.desc()).limit(MAX_SIGNALS * 2))
                if scope.allows(r.channel_id)][:MAX_SIGNALS]
            posts_team = {}
            chans = {c.id: c for c in s.scalars(
                select(Channel).join(ChannelMember, ChannelMember.channel_id == Channel.id)
                .where(ChannelMember.user_id == user.id, Channel.type.in_(("O", "P"))))
                if scope.allows(c.id)}
            for c in {r.channel_id for r in stored} - set(chans):
                ch = s.get(Channel, c)
                if ch is not None:
                    posts_team[c] = ch.team_id
            teams = {t.id: t.name for t in s.scalars(select(Team))}
            names = frozenset(x.lower() for row in s.execute(
                select(User.username, User.first_name, User.last_name)) for v in row if v
                for x in re.split(r"[\s.]+", v) if x)
            team_of = {**posts_team, **{c.id: c.team_id for c in chans.values()}}
        base = self.settings.permalink_base
        signals: list[Signal] = []
        activity: dict[str, float] = {}
        for r in stored:
            w = KIND_WEIGHT[r.kind] * decay(r.at, now, half)
            activity[r.channel_id] = activity.get(r.channel_id, 0.0) + w
            src = permalink(base, teams.get(team_of.get(r.channel_id) or ""), r.source) \
                or f"post:{r.source}"
            vec = np.frombuffer(r.vector, dtype=np.float32) if r.vector else None
            signals.append(Signal(r.kind, r.text, w, src, r.channel_id,
                                  key=(r.user_id, r.kind, r.source), vector=vec))
        top = max(activity.values(), default=0.0)
        for c in chans.values():
            text = " ".join(x for x in (f"~{c.name}", c.display_name, c.purpose, c.header) if x)
            share = activity.get(c.id, 0.0) / top if top else 0.0
            signals.append(Signal("channel", text, KIND_WEIGHT["channel"] * (0.3 + share),
                                  f"~{teams.get(c.team_id or '', '')}/{c.name}", c.id))
        if user.position:
            signals.append(Signal("position", user.position, KIND_WEIGHT["position"], "profile"))
        if private:
            for t in interests_list(ps.interests):
                signals.append(Signal("interest", t, KIND_WEIGHT["interest"], "profile"))
        signals.sort(key=lambda x: -x.weight)
        prof = Profile(user_id=user.id, username=user.username, name=user.display_name,
                       position=user.position, locale=user.locale or "",
                       personalize=ps.personalize, interests=ps.interests if private else "",
                       catchup=ps.catchup, alerts=ps.alerts_from_interests, signals=signals,
                       keywords=keywords(signals, names=names))
        if vector:  # unshown interests still shape the ranking; their words are not shown
            prof.vector = self._vector(signals, interests_list(ps.interests) if not private
                                       else [], self._centre())
        return prof

    def _centre(self) -> np.ndarray | None:
        if self._index is None:
            return None
        try:
            return self._index().centroid()
        except Exception as exc:  # noqa: BLE001 - an unreachable index: an uncentred profile
            log.warning("profile centroid unavailable (%s): the profile is not centred", exc)
            return None

    def _vector(self, signals: list[Signal], hidden: list[str],
                centre: np.ndarray | None = None) -> np.ndarray | None:
        """The weighted mix of the signals' embeddings, centred on ``centre`` (what every text
        of the workspace shares: without it every profile points much the same way and ranks
        the same sentences first). Measured on the sample (bench and tests): uncentred, two
        readers' "For you" items were closer to the *other* reader's profile in 2 of 5 pairs;
        centred on each reader's own channels, in 1 of 5 (the Head of Content's items on an
        engineering meeting: her channels' centre removed the very marketing direction that
        sets her apart there); centred on the workspace, in none (margins 0.03-0.16)."""
        items: list[tuple[str, float, Signal | None]] = [
            (s.text, s.weight, s) for s in signals if s.text.strip()]
        items += [(t, KIND_WEIGHT["interest"], None) for t in hidden]
        if not items:
            return None
        need = [(i, t) for i, (t, _, sig) in enumerate(items)
                if (sig is None or sig.vector is None) and t not in self._vectors]
        if need:
            emb = self._embedder().encode([t for _, t in need])
            fresh: list[tuple[tuple, bytes]] = []
            for (i, t), v in zip(need, emb):
                sig = items[i][2]
                v = np.asarray(v, dtype=np.float32)
                if sig is not None and sig.key:
                    sig.vector = v
                    fresh.append((sig.key, v.tobytes()))
                else:
                    if len(self._vectors) > 20_000:
                        self._vectors.clear()
                    self._vectors[t] = v
            if fresh:
                self._store_vectors(fresh)
        vecs = np.stack([sig.vector if sig is not None and sig.vector is not None
                         else self._vectors[t] for t, _, sig in items])
        weights = np.array([w for _, w, _ in items], dtype=np.float32)
        mix = (weights[:, None] * vecs).sum(axis=0)
        mix /= float(np.linalg.norm(mix)) or 1.0
        if centre is not None:
            mix = mix - CENTRING * centre
        norm = float(np.linalg.norm(mix))
        return mix / norm if norm else None

    def _store_vectors(self, fresh: list[tuple[tuple, bytes]]) -> None:
        with self.db.session() as s:
            for key, blob in fresh:
                row = s.get(ProfileSignal, key)
                if row is not None:
                    row.vector = blob
            s.commit()


def keywords(signals: list[Signal], n: int = 12, names: frozenset[str] = frozenset()
             ) -> list[str]:
    """The words the reader's own signals (what they write, react to, are mentioned in) use
    most, weighted, each counted once per signal, found in at least two of them; stop words,
    people's names and numbers left out."""
    score: dict[str, float] = {}
    seen: Counter = Counter()
    for s in signals:
        if s.kind not in POST_KINDS:
            continue
        words = {w.lower() for w in WORD.findall(s.text)}
        for w in words:
            if len(w) < 3 or w in STOP or w in names or w.isdigit() or len(w) > 30:
                continue
            score[w] = score.get(w, 0.0) + s.weight
            seen[w] += 1
    ranked = [w for w, c in sorted(score.items(), key=lambda x: -x[1])
              if c > 0 and seen[w] >= 2]
    return ranked[:n]


def similarity(profile: Profile | None, vectors: np.ndarray) -> np.ndarray:
    """Cosine closeness of each (normalised) row of ``vectors`` to the profile."""
    if profile is None or profile.vector is None or len(vectors) == 0:
        return np.zeros(len(vectors))
    return vectors @ profile.vector
