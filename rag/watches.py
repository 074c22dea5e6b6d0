"""Watches: a reader's standing topics, matched against threads and conversation windows as
they are indexed, raising at most one alert per thread per watch into an outbox the bot sends.

Matching is batched: the indexer hands over each batch it wrote (new or changed chunks with
their embeddings), and one matrix product of the watch topics' embeddings by the chunks'
embeddings, plus one of the topics' words by the chunks' words (the share of a topic's words a
chunk contains), scores every watch against every chunk at once. A pair scores
``(1 - LEXICAL_WEIGHT) * cosine + LEXICAL_WEIGHT * overlap``; pairs at or above
``OPENOPS_WATCH_THRESHOLD`` are candidates. Only then, per candidate owner, the permission gate
(:func:`rag.permissions.readable_scope`, read now) decides: an owner who may not read the
chunk's channel gets nothing. A thread alerts a watch once (the unique row in
``watch_alerts``), a reader at most ``OPENOPS_WATCH_DAILY_CAP`` times a (UTC) day, and only for
content newer than the watch (a re-index of history raises nothing).

Only threads and windows of channels (public and private) are matched: a direct or group
message already notifies its participants."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import Channel, Database, Team, User, Watch, WatchAlert
from .errors import InvalidRequest, NotFound
from .guard import guard_markdown
from .permissions import known_user, readable_scope
from .util import now_ms, permalink

log = logging.getLogger("openops.watches")

LEXICAL_WEIGHT = 0.3
MAX_WATCHES = 25  # explicit watches per reader (profile interests come on top)
TOPIC_MAX = 200
STOP = frozenset("""a an and are as at be but by for from has have in into is it its of on or
so than that the their them then there these this to was were what when where which who will
with about after all also any can could did does done how not our out over should some such
they we would you your""".split())
_WORD = re.compile(r"[a-z0-9][a-z0-9_.+#-]*[a-z0-9+#]|[a-z0-9]", re.I)
# "Maria Gonzalez (@maria.gonzalez) 2026-09-21 10:00: " (ingest.chunking's line prefix)
_PREFIX = re.compile(r"^.*?\d{4}-\d{2}-\d{2} \d{2}:\d{2}: ")
# the author's handle in that prefix: a quote in a DM names people without mentioning them
_HANDLE = re.compile(r"^(.*?) \(@[\w.-]+\) (\d{4}-\d{2}-\d{2} \d{2}:\d{2})")


def words(text: str) -> set[str]:
    """The content words of ``text``, lowercased (stopwords and 1-2 letter words left out)."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 2 and w not in STOP}


def chunk_lines(text: str) -> list[str]:
    """A message chunk's lines without the channel header (its first line)."""
    return [line for line in text.split("\n")[1:] if line.strip()]


def chunk_words(text: str) -> set[str]:
    """The words people wrote in a message chunk: not the channel header nor the author and
    time prefixes (a topic naming a channel or a person must not match every line there)."""
    return words(" ".join(_PREFIX.sub("", line) for line in chunk_lines(text)))


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def split_topics(interests: str) -> list[str]:
    """Comma-separated topics, trimmed, de-duplicated without regard to case."""
    out: dict[str, str] = {}
    for part in (interests or "").split(","):
        topic = " ".join(part.split())[:TOPIC_MAX]
        if topic:
            out.setdefault(topic.lower(), topic)
    return list(out.values())


def watch_dict(w: Watch) -> dict:
    return {"id": w.id, "topic": w.topic, "from_profile": bool(w.from_profile),
            "created_at": w.created_at}


def sync_profile_watches(session: Session, user_id: str, interests: str, enabled: bool) -> None:
    """Make the reader's implicit watches (``from_profile``) those of their stated interests
    when they opted in to alerts from them, and none otherwise. Alerts of a watch that goes
    and were not sent yet are dropped (status ``skipped``). The caller commits."""
    want = {t.lower(): t for t in split_topics(interests)} if enabled else {}
    have = {w.topic.lower(): w for w in session.scalars(select(Watch).where(
        Watch.user_id == user_id, Watch.from_profile.is_(True)))}
    gone = [w.id for k, w in have.items() if k not in want]
    if gone:
        _drop_watches(session, gone)
    now = now_ms()
    for k, topic in want.items():
        if k not in have:
            session.add(Watch(user_id=user_id, topic=topic, from_profile=True, created_at=now))
    session.flush()


def _drop_watches(session: Session, ids: list[int]) -> None:
    session.execute(update(WatchAlert).where(WatchAlert.watch_id.in_(ids),
                                             WatchAlert.status == "pending")
                    .values(status="skipped"))
    session.execute(delete(Watch).where(Watch.id.in_(ids)))


@dataclass(frozen=True)
class IndexedBatch:
    """What the indexer wrote in one batch: chunk ids, texts, metadata, embeddings (n, d)."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    embeddings: np.ndarray


class Watches:
    """The store (list, add, remove), the matcher (:meth:`on_indexed`, an indexer listener)
    and the outbox's claims (:meth:`claim`, :meth:`finish`) the bot sends from."""

    def __init__(self, settings, db: Database, embedder: Callable[[], Any],
                 index: Callable[[], Any]):
        self.settings = settings
        self.db = db
        self._embedder = embedder
        self._index = index
        self._vectors: dict[str, np.ndarray] = {}  # topic -> normalised embedding
        self._lock = threading.Lock()
        # called (from the indexer's thread) when new alerts are pending: the bot wakes up
        self.on_pending: list[Callable[[], None]] = []

    # ---- the store ----------------------------------------------------------------------
    def list_for(self, who: str) -> tuple[str, list[dict]]:
        with self.db.session() as s:
            user = known_user(s, who)
            rows = s.scalars(select(Watch).where(Watch.user_id == user.id).order_by(Watch.id))
            return user.id, [watch_dict(w) for w in rows]

    def add(self, who: str, topic: str) -> dict:
        topic = " ".join((topic or "").split())
        if len(topic) < 2 or len(topic) > TOPIC_MAX:
            raise InvalidRequest(f"a topic takes 2 to {TOPIC_MAX} characters, e.g. "
                                 "\"billing api outage\"")
        if not words(topic):
            raise InvalidRequest("a topic needs at least one word of 3 letters or more that "
                                 "is not a stopword (\"the\", \"and\", ...)")
        with self.db.session() as s:
            user = known_user(s, who)
            mine = list(s.scalars(select(Watch).where(Watch.user_id == user.id,
                                                      Watch.from_profile.is_(False))))
            same = next((w for w in mine if w.topic.lower() == topic.lower()), None)
            if same is not None:
                return watch_dict(same)
            if len(mine) >= MAX_WATCHES:
                raise InvalidRequest(f"at most {MAX_WATCHES} watches per reader: remove one "
                                     "first (DELETE /v1/watches/{id}, /openops unwatch N)")
            w = Watch(user_id=user.id, topic=topic, from_profile=False, created_at=now_ms())
            s.add(w)
            s.commit()
            return watch_dict(w)

    def remove(self, who: str, watch_id: int) -> dict:
        with self.db.session() as s:
            user = known_user(s, who)
            w = s.get(Watch, watch_id)
            if w is None or w.user_id != user.id:
                raise NotFound(f"you have no watch #{watch_id} (list them: GET /v1/watches, "
                               "/openops watch list)")
            if w.from_profile:
                raise InvalidRequest(f"watch #{watch_id} comes from your profile's interests: "
                                     "change them (PUT /v1/profile, /openops profile interests) "
                                     "or turn alerts from interests off")
            out = watch_dict(w)
            _drop_watches(s, [w.id])
            s.commit()
            return out

    # ---- matching -----------------------------------------------------------------------
    def _topic_vectors(self, topics: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(topics) if t not in self._vectors]
            if missing:
                emb = np.asarray(self._embedder().encode(missing), dtype=np.float32)
                for t, v in zip(missing, emb):
                    self._vectors[t] = v / (np.linalg.norm(v) or 1.0)
            return np.stack([self._vectors[t] for t in topics])

    def score(self, watches: list[Watch], texts: list[str], embeddings: np.ndarray
              ) -> np.ndarray:
        """(watches x chunks) scores: one matrix product of embeddings, one of words."""
        topics = self._topic_vectors([w.topic for w in watches])
        emb = np.asarray(embeddings, dtype=np.float32)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        cosine = topics @ emb.T
        topic_words = [sorted(words(w.topic)) for w in watches]
        vocab = {t: i for i, t in enumerate(sorted({x for ws in topic_words for x in ws}))}
        want = np.zeros((len(watches), len(vocab)), dtype=np.float32)
        for i, ws in enumerate(topic_words):
            for x in ws:
                want[i, vocab[x]] = 1.0 / len(ws)
        have = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for j, text in enumerate(texts):
            for x in chunk_words(text) & vocab.keys():
                have[j, vocab[x]] = 1.0
        overlap = want @ have.T
        return (1 - LEXICAL_WEIGHT) * cosine + LEXICAL_WEIGHT * overlap

    def on_indexed(self, batch: IndexedBatch) -> int:
        """The indexer's listener: match a written batch, raise alerts; how many were raised."""
        keep = [j for j, m in enumerate(batch.metadatas)
                if m.get("source") == "message" and m.get("channel_type") in ("O", "P")]
        if not keep:
            return 0
        with self.db.session() as s:
            watches = list(s.scalars(select(Watch).order_by(Watch.id)))
        if not watches:
            return 0
        metas = [batch.metadatas[j] for j in keep]
        scores = self.score(watches, [batch.texts[j] for j in keep],
                            np.asarray(batch.embeddings)[keep])
        newest = np.array([int(m.get("last_ts") or 0) for m in metas])
        created = np.array([w.created_at for w in watches])
        scores[newest[None, :] < created[:, None]] = -1.0  # content older than the watch
        hit_w, hit_c = np.nonzero(scores >= self.settings.watch_threshold)
        best: dict[tuple[int, str], tuple[float, dict]] = {}  # (watch, thread) -> best chunk
        for wi, cj in zip(hit_w.tolist(), hit_c.tolist()):
            w, m = watches[wi], metas[cj]
            if set(str(m.get("author_ids") or "").split(",")) <= {w.user_id}:
                continue  # the owner's own words
            key = (w.id, str(m["thread_id"]))
            if key not in best or scores[wi, cj] > best[key][0]:
                best[key] = (float(scores[wi, cj]), m)
        if not best:
            return 0
        owner = {w.id: w.user_id for w in watches}
        raised = self._raise(best, owner)
        if raised:
            for wake in list(self.on_pending):
                try:
                    wake()
                except Exception:  # noqa: BLE001 - a closed loop must not stop indexing
                    log.debug("alert wake-up failed", exc_info=True)
        return raised

    def _raise(self, best: dict[tuple[int, str], tuple[float, dict]],
               owner: dict[int, str]) -> int:
        now = now_ms()
        day = utc_day(now)
        cap = self.settings.watch_daily_cap
        archived = self.settings.include_archived
        raised = 0
        with self.db.session() as s:
            users = {u.id: u for u in s.scalars(select(User).where(
                User.id.in_(sorted(set(owner[w] for w, _ in best)))))}
            scopes = {uid: readable_scope(s, uid, include_archived=archived) for uid in users}
            sent_today = dict(s.execute(
                select(WatchAlert.user_id, func.count()).where(
                    WatchAlert.user_id.in_(list(users)), WatchAlert.day == day,
                    WatchAlert.status != "skipped").group_by(WatchAlert.user_id)).all())
            seen = {(int(w), str(t)) for w, t in s.execute(
                select(WatchAlert.watch_id, WatchAlert.thread_id).where(
                    WatchAlert.watch_id.in_(sorted({w for w, _ in best})),
                    WatchAlert.thread_id.in_(sorted({t for _, t in best}))))}
            for (wid, thread), (score, meta) in sorted(best.items(), key=lambda kv: -kv[1][0]):
                uid = owner[wid]
                scope = scopes.get(uid)
                # the gate: only an owner who may read the channel now (unknown: nobody)
                if scope is None or not scope.allows(str(meta["channel_id"])):
                    continue
                if (wid, thread) in seen or sent_today.get(uid, 0) >= cap:
                    continue
                s.add(WatchAlert(watch_id=wid, user_id=uid, channel_id=str(meta["channel_id"]),
                                 thread_id=thread, score=round(score, 4), day=day,
                                 status="pending", created_at=now))
                try:
                    s.commit()
                except IntegrityError:  # raised meanwhile by another indexer
                    s.rollback()
                    continue
                seen.add((wid, thread))
                sent_today[uid] = sent_today.get(uid, 0) + 1
                raised += 1
        return raised

    # ---- the outbox ---------------------------------------------------------------------
    def pending(self, limit: int = 50) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(WatchAlert.id).where(WatchAlert.status == "pending")
                                  .order_by(WatchAlert.id).limit(limit)))

    def unfinished(self) -> list[int]:
        """Alerts claimed for sending and never marked done (the sender stopped midway)."""
        with self.db.session() as s:
            return list(s.scalars(select(WatchAlert.id).where(WatchAlert.status == "sending")
                                  .order_by(WatchAlert.id)))

    def claim(self, alert_id: int) -> bool:
        """pending -> sending, in the database, before anything is posted: one sender wins."""
        with self.db.session() as s:
            got = s.execute(update(WatchAlert).where(WatchAlert.id == alert_id,
                                                     WatchAlert.status == "pending")
                            .values(status="sending"))
            s.commit()
            return bool(got.rowcount)

    def finish(self, alert_id: int, status: str) -> None:
        with self.db.session() as s:
            s.execute(update(WatchAlert).where(WatchAlert.id == alert_id).values(
                status=status, sent_at=now_ms() if status == "sent" else None))
            s.commit()

    def alert(self, alert_id: int) -> tuple[WatchAlert, Watch | None] | None:
        with self.db.session() as s:
            a = s.get(WatchAlert, alert_id)
            if a is None:
                return None
            return a, s.get(Watch, a.watch_id)

    def message(self, alert_id: int) -> str | None:
        """The alert's DM: the thread's lines closest to the watch's topic and the permalink,
        through the output guard; None when the owner may no longer read the thread (the
        gate, read now: a removed member, a deactivated owner, an archived channel)."""
        got = self.alert(alert_id)
        if got is None:
            return None
        a, w = got
        if w is None:
            return None
        with self.db.session() as s:
            scope = readable_scope(s, a.user_id, include_archived=self.settings.include_archived)
            ch = s.get(Channel, a.channel_id)
            team = s.get(Team, ch.team_id) if ch is not None and ch.team_id else None
        if ch is None or not scope.allows(a.channel_id):
            return None
        hits = self._index().thread_chunks([(a.thread_id, a.channel_id)], scope).get(
            (a.thread_id, a.channel_id)) or []
        lines = [(h, line) for h in hits for line in chunk_lines(h.text)]
        if not lines:
            return None
        topic = self._topic_vectors([w.topic])[0]
        vecs = np.asarray(self._embedder().encode([line for _, line in lines]), dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        closeness = vecs @ topic + LEXICAL_WEIGHT * np.array(
            [len(words(line) & words(w.topic)) / max(1, len(words(w.topic))) for _, line in lines])
        top = sorted(np.argsort(-closeness)[:2].tolist())
        hit = lines[top[0]][0]
        link = permalink(self.settings.permalink_base, team.name if team else None,
                         str(hit.metadata.get("post_id") or a.thread_id))
        quote = "\n".join("> " + _clip(_HANDLE.sub(r"\1, \2", lines[i][1]), 300) for i in top)
        where = ch.display_name or ch.name
        text = (f":bell: New on **{_clip(w.topic, 80)}** in ~{ch.name} ({where})\n\n{quote}"
                + (f"\n\n[Open the thread]({link})" if link else "")
                + (f"\n\n_From the interests in your profile (watch #{w.id})._" if w.from_profile
                   else f"\n\n_Your watch #{w.id}: `/openops unwatch {w.id}` stops it._"))
        return guard_markdown(text, {link} if link else set())


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"
