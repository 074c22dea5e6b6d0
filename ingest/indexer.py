"""Brings the Chroma index in line with the post store, channel by channel.

For each dirty channel: chunk its live posts and files, compare with the chunks Chroma holds for
it (ids and content hashes), embed only what is new or changed, upsert, delete what vanished,
then record the chunk count, bump the channel's index version and clear its dirty flag. A crash
at any point leaves the channel dirty, and the next run redoes it idempotently: no duplicates
(ids are deterministic), no gaps.

Embedding runs in batches that span channels, and each batch is written in one Chroma call.
Writes are not overlapped with embedding: on 2 cores the model already uses both, and Chroma's
local upsert holds the interpreter lock, so a writer thread only slowed embedding down
(measured by bench/ingest_bench.py).

A Chroma server that stops answering (a restart, a network blip) is retried with backoff for
~15 s; past that the run stops with :class:`IndexUnavailable`, whose message says what to do.
Either way the channels not yet written stay dirty, so the next run finishes them exactly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update

from rag.db import Channel, Database, File, Post, Team, User
from rag.index import ChunkIndex
from rag.watches import IndexedBatch

from .chunking import ChannelInfo, Chunk, Chunker, FileDoc, Message

log = logging.getLogger(__name__)


class IndexUnavailable(Exception):
    """The vector store did not answer, even after retries."""


def _transient(exc: BaseException) -> bool:
    """A connection-level failure of a Chroma server (refused, reset, timed out)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with chromadb
        return isinstance(exc, ConnectionError)
    return isinstance(exc, (httpx.TransportError, ConnectionError))


@dataclass
class IndexReport:
    channels: int = 0
    threads: int = 0
    chunks: int = 0  # chunks the index holds for the channels processed
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    files: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Job:
    channel_id: str
    chunks: list[Chunk]
    stale: list[str]
    todo: list[Chunk]
    dirty_seq: int = 0
    embeddings: object = None


class Indexer:
    retry_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8)

    def __init__(self, db: Database, index: ChunkIndex, embedder, chunker: Chunker,
                 *, batch_texts: int = 1024,
                 listeners: list[Callable[[IndexedBatch], object]] | None = None):
        self.db = db
        self.index = index
        self.embedder = embedder
        self.chunker = chunker
        self.batch_texts = batch_texts
        # called after each batch is written and committed, with the chunks it wrote (new or
        # changed content only: unchanged chunks are not re-embedded, so never handed over)
        self.listeners: list[Callable[[IndexedBatch], object]] = list(listeners or [])

    def _store(self, what: str, call: Callable, *args):
        """``call(*args)`` on the index, retried while the server is unreachable (every write
        here is idempotent: upserts by id, deletes of ids)."""
        for delay in (*self.retry_delays, None):
            try:
                return call(*args)
            except Exception as exc:
                if not _transient(exc):
                    raise
                if delay is None:
                    raise IndexUnavailable(
                        f"the vector store (Chroma) stopped answering while {what} "
                        f"({exc.__class__.__name__}: {exc}), also after "
                        f"{len(self.retry_delays)} retries over {sum(self.retry_delays):g} s. "
                        "Start the Chroma server again (`docker compose up -d chroma`, or "
                        "`chroma run`; its address is OPENOPS_CHROMA_URL) and run the same "
                        "command again: the channels not yet indexed are still marked, so "
                        "nothing is lost or indexed twice") from exc
                log.warning("Chroma did not answer while %s (%s); retrying in %s s", what,
                            exc.__class__.__name__, delay)
                time.sleep(delay)

    def dirty_channels(self) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(Channel.id).where(Channel.dirty.is_(True))
                                  .order_by(Channel.id)))

    def _load(self, channel_id: str
              ) -> tuple[ChannelInfo, list[Message], list[FileDoc], int] | None:
        with self.db.session() as s:
            ch = s.get(Channel, channel_id)
            if ch is None:
                return None
            seq = ch.dirty_seq
            team = s.get(Team, ch.team_id) if ch.team_id else None
            info = ChannelInfo(id=ch.id, team_id=ch.team_id or "", type=ch.type, name=ch.name,
                               display_name=ch.display_name, team_name=team.name if team else "")
            posts = list(s.scalars(select(Post).where(Post.channel_id == channel_id,
                                                      Post.delete_at == 0)))
            dead_roots = set(s.scalars(select(Post.id).where(Post.channel_id == channel_id,
                                                             Post.delete_at > 0)))
            user_ids = {p.user_id for p in posts}
            files = list(s.scalars(select(File).where(File.channel_id == channel_id,
                                                      File.delete_at == 0, File.error == "")))
            by_post = {p.id: p for p in posts}
            user_ids |= {by_post[f.post_id].user_id for f in files if f.post_id in by_post}
            users = {u.id: u for u in s.scalars(select(User).where(User.id.in_(list(user_ids))))}

        def author(uid: str) -> str:
            u = users.get(uid)
            return f"{u.display_name} (@{u.username})" if u else f"@{uid}"

        msgs = [
            Message(p.id, p.root_id, p.user_id, author(p.user_id), p.create_at, p.message)
            for p in posts
            if p.root_id not in dead_roots and p.message.strip()
        ]
        docs = []
        for f in files:
            post = by_post.get(f.post_id)
            if post is None or post.root_id in dead_roots or not f.text.strip():
                continue
            docs.append(FileDoc(f.id, post.id, post.root_id or post.id, post.user_id,
                                author(post.user_id), f.create_at or post.create_at, f.name,
                                f.kind, f.text))
        return info, msgs, docs, seq

    def run(self, channel_ids: list[str] | None = None,
            progress: Callable[[IndexReport, int], None] | None = None) -> IndexReport:
        """Index the given (default: all dirty) channels; ``progress(report, channels_total)``."""
        todo_ids = self.dirty_channels() if channel_ids is None else channel_ids
        report = IndexReport()
        total = len(todo_ids)
        pending: list[_Job] = []
        pending_texts = 0
        for cid in todo_ids:
            job = self._plan(cid, report)
            if job is None:
                continue
            pending.append(job)
            pending_texts += len(job.todo)
            if pending_texts >= self.batch_texts:
                self._flush(pending, report, progress, total)
                pending, pending_texts = [], 0
        if pending:
            self._flush(pending, report, progress, total)
        return report

    def _flush(self, jobs: list[_Job], report: IndexReport,
               progress: Callable[[IndexReport, int], None] | None, total: int) -> None:
        self._embed(jobs, report)
        self._write(jobs)
        self._tell(jobs)
        if progress:
            progress(report, total)

    def _plan(self, cid: str, report: IndexReport) -> _Job | None:
        loaded = self._load(cid)
        if loaded is None:
            return None
        info, msgs, docs, seq = loaded
        chunks = self.chunker.chunk_channel(info, msgs, docs)
        existing = self._store("reading a channel's chunks", self.index.channel_hashes, cid)
        todo = [c for c in chunks if existing.get(c.id) != c.hash]
        keep = {c.id for c in chunks}
        stale = [i for i in existing if i not in keep]
        report.channels += 1
        report.threads += len({c.metadata["thread_id"] for c in chunks if c.metadata["source"] == "message"})
        report.files += len(docs)
        report.chunks += len(chunks)
        report.unchanged += len(chunks) - len(todo)
        report.deleted += len(stale)
        return _Job(cid, chunks, stale, todo, dirty_seq=seq)

    def _embed(self, jobs: list[_Job], report: IndexReport) -> None:
        texts = [c.text for j in jobs for c in j.todo]
        if not texts:
            return
        emb = self.embedder.encode(texts)
        pos = 0
        for j in jobs:
            j.embeddings = emb[pos : pos + len(j.todo)]
            pos += len(j.todo)
        report.embedded += len(texts)

    def _tell(self, jobs: list[_Job]) -> None:
        """The listeners (the watch matcher) get the batch once it is in the index; one that
        fails is logged and never stops indexing (nor makes the batch be redone)."""
        written = [(c, j.embeddings[n]) for j in jobs for n, c in enumerate(j.todo)]
        if not written or not self.listeners:
            return
        import numpy as np

        batch = IndexedBatch(ids=[c.id for c, _ in written], texts=[c.text for c, _ in written],
                             metadatas=[dict(c.metadata) for c, _ in written],
                             embeddings=np.stack([e for _, e in written]))
        for listener in self.listeners:
            try:
                listener(batch)
            except Exception:  # noqa: BLE001 - an alert lost is better than an index stuck
                log.exception("index listener %r failed", listener)

    def _write(self, jobs: list[_Job]) -> None:
        """One delete and one upsert for the whole batch (Chroma writes ~3x faster in bulk
        than channel by channel), then the channels' counts, versions and dirty flags in one
        transaction: until it commits, the channels stay dirty and are redone after a crash."""
        stale = [i for j in jobs for i in j.stale]
        if stale:
            self._store("deleting chunks", self.index.delete, stale)
        todo = [(c, j.embeddings[n]) for j in jobs for n, c in enumerate(j.todo)]
        if todo:
            import numpy as np

            self._store("writing chunks", self.index.upsert, [c.id for c, _ in todo],
                        np.stack([e for _, e in todo]), [c.text for c, _ in todo],
                        [c.metadata for c, _ in todo])
        with self.db.session() as s:
            for j in jobs:
                s.execute(
                    update(Channel).where(Channel.id == j.channel_id).values(
                        chunk_count=len(j.chunks),
                        index_version=Channel.index_version + 1,
                    )
                )
                # clean only if nothing changed since the channel was read
                s.execute(update(Channel).where(Channel.id == j.channel_id,
                                                Channel.dirty_seq == j.dirty_seq)
                          .values(dirty=False))
            s.commit()
