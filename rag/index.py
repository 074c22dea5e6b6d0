"""The chunk index in Chroma, and permission-scoped search over it.

Search strategy (see README, "Design"): a user's scope is a set of channels with known chunk
counts. A *narrow* scope (at most ``exact_scope_max_chunks`` chunks) is searched exactly: the
embeddings of its channels are held in a per-process cache (keyed by channel and index version,
so a write anywhere invalidates it) and scored by one matrix product. A *broad* scope is searched
by over-fetching an unfiltered ANN query in proportion to the share of the index the user may
read, keeping only readable hits; if too few survive, the fetch grows, and finally falls back to
the exact path, so a user gets k results whenever k readable chunks exist. Chroma's own filtered
search is never used: it is 20-200x slower than an unfiltered query at this scale."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .permissions import Scope

log = logging.getLogger(__name__)

# ef_search: measured on 200k real MiniLM embeddings (bench/search_bench.py, 200 queries), an
# unfiltered top 8 has recall 0.85 against exact search at ef 128, 0.94 at 512, 0.96 at 1024 and
# 0.98 at 2048; latency grows ~2.5x from 512 to 1024 (still a few ms).
EF_SEARCH = 1024
HNSW_CONFIG = {"space": "cosine", "ef_construction": 128, "ef_search": EF_SEARCH, "max_neighbors": 32}


def open_chroma(url: str | None, path: str | None):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        return chromadb.HttpClient(
            host=parsed.hostname or "localhost",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=chroma_settings,
        )
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


@dataclass
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any]


class _ChannelCache:
    """LRU of per-channel (ids, embeddings, post ids of each row), bounded by total rows."""

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self.rows = 0
        self._data: OrderedDict[str, tuple[int, list[str], np.ndarray, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, channel_id: str, version: int
            ) -> tuple[list[str], np.ndarray, list[str]] | None:
        with self._lock:
            item = self._data.get(channel_id)
            if item is None or item[0] != version:
                return None
            self._data.move_to_end(channel_id)
            return item[1], item[2], item[3]

    def put(self, channel_id: str, version: int, ids: list[str], emb: np.ndarray,
            posts: list[str]) -> None:
        with self._lock:
            old = self._data.pop(channel_id, None)
            if old is not None:
                self.rows -= len(old[1])
            self._data[channel_id] = (version, ids, emb, posts)
            self.rows += len(ids)
            while self.rows > self.max_rows and len(self._data) > 1:
                _, (_, old_ids, _, _) = self._data.popitem(last=False)
                self.rows -= len(old_ids)


class _ScopeCache:
    """Assembled (ids, matrix) of whole scopes, keyed by their channels and versions, so that a
    user's repeated queries skip re-stacking their channels' rows (the dominant cost of a warm
    exact query over ~20k rows). Bounded by total rows; any channel write changes the key."""

    def __init__(self, max_rows: int, max_entries: int = 64):
        self.max_rows = max_rows
        self.max_entries = max_entries
        self.rows = 0
        self._data: OrderedDict[int, tuple[tuple, list[str], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(scope: Scope) -> tuple:
        return tuple(sorted((c, v) for c, (n, v) in scope.channels.items() if n > 0))

    def get(self, key: tuple) -> tuple[list[str], np.ndarray] | None:
        with self._lock:
            item = self._data.get(hash(key))
            if item is None or item[0] != key:
                return None
            self._data.move_to_end(hash(key))
            return item[1], item[2]

    def put(self, key: tuple, ids: list[str], mat: np.ndarray) -> None:
        if len(ids) > self.max_rows:
            return
        with self._lock:
            old = self._data.pop(hash(key), None)
            if old is not None:
                self.rows -= len(old[1])
            self._data[hash(key)] = (key, ids, mat)
            self.rows += len(ids)
            while (self.rows > self.max_rows or len(self._data) > self.max_entries) and self._data:
                _, (_, old_ids, _) = self._data.popitem(last=False)
                self.rows -= len(old_ids)


class _RecordCache:
    """LRU of what questions read back from Chroma after scoring: a chunk's text and metadata,
    or a thread's chunks. Each entry carries the index version of its channel when it was read
    and serves only a scope that sees that same version (any write to the channel bumps it),
    so it never returns text the index no longer holds for that scope. Saves the one or two
    Chroma reads per question that stood between the ranking and the prompt."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._data: OrderedDict[Any, tuple[str, int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, scope: Scope) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            channel, version, value = item
            if scope.channels.get(channel, (0, -1))[1] != version:
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: Any, scope: Scope, channel: str, value: Any) -> None:
        seen = scope.channels.get(channel)
        if seen is None:
            return
        with self._lock:
            self._data.pop(key, None)
            self._data[key] = (channel, seen[1], value)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)


class ChunkIndex:
    def __init__(
        self,
        client,
        collection: str,
        *,
        exact_scope_max_chunks: int = 60000,
        cache_max_chunks: int = 400000,
        ef_search: int = EF_SEARCH,
    ):
        self.client = client
        self.collection = client.get_or_create_collection(
            collection,
            embedding_function=None,
            configuration={"hnsw": {**HNSW_CONFIG, "ef_search": ef_search}},
            metadata={"app": "openops"},
        )
        try:
            current = (self.collection.configuration or {}).get("hnsw") or {}
            if current.get("ef_search") not in (None, ef_search):
                # takes effect when the index is next loaded (a new process)
                self.collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
        except Exception as exc:  # noqa: BLE001 - an older server: keep its setting
            log.warning("could not set ef_search=%d on %s: %s", ef_search, collection, exc)
        self.exact_scope_max_chunks = exact_scope_max_chunks
        self._cache = _ChannelCache(cache_max_chunks)
        self._scopes = _ScopeCache(max(exact_scope_max_chunks * 2, 1))
        self._records = _RecordCache(20000)
        self._threads = _RecordCache(5000)
        self._centroid: tuple[float, np.ndarray | None] | None = None  # (at, mean)
        try:
            self.max_batch = int(client.get_max_batch_size())
        except Exception:  # pragma: no cover - older servers
            self.max_batch = 5000

    # ---- writes -------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        step = max(1, min(self.max_batch, 4000))
        for i in range(0, len(ids), step):
            self.collection.upsert(
                ids=list(ids[i : i + step]),
                embeddings=embeddings[i : i + step],
                documents=list(documents[i : i + step]),
                metadatas=list(metadatas[i : i + step]),
            )

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        step = max(1, min(self.max_batch, 4000))
        for i in range(0, len(ids), step):
            self.collection.delete(ids=ids[i : i + step])

    def channel_hashes(self, channel_id: str) -> dict[str, str]:
        """Ids and content hashes of a channel's chunks, as Chroma holds them (the truth)."""
        got = self.collection.get(where={"channel_id": channel_id}, include=["metadatas"])
        return {i: str((m or {}).get("hash", "")) for i, m in zip(got["ids"], got["metadatas"])}

    def count(self) -> int:
        return int(self.collection.count())

    # ---- reads --------------------------------------------------------------------------
    def _channel_embeddings(self, scope: Scope) -> tuple[list[str], np.ndarray]:
        ids, mat, _ = self._channel_rows(scope)
        return ids, mat

    def _channel_rows(self, scope: Scope) -> tuple[list[str], np.ndarray, list[str]]:
        """(ids, embeddings, post ids) of every chunk of the scope's channels, from the cache
        where its version is current, else loaded from Chroma into it."""
        ids: list[str] = []
        mats: list[np.ndarray] = []
        posts: list[str] = []
        missing: dict[str, int] = {}
        for cid, (count, version) in scope.channels.items():
            if count <= 0:
                continue
            hit = self._cache.get(cid, version)
            if hit is None:
                missing[cid] = version
            else:
                ids.extend(hit[0])
                mats.append(hit[1])
                posts.extend(hit[2])
        if missing:
            loaded: dict[str, tuple[list[str], list[Any], list[str]]] = {
                c: ([], [], []) for c in missing}
            # groups of channels holding at most ~4,000 chunks per request (Chroma's SQLite
            # refuses statements with more than 32,766 variables), each paged as well
            groups: list[list[str]] = [[]]
            rows = 0
            for cid in missing:
                n = scope.channels[cid][0]
                if groups[-1] and rows + n > 4000:
                    groups.append([])
                    rows = 0
                groups[-1].append(cid)
                rows += n
            for part in groups:
                where = {"channel_id": part[0]} if len(part) == 1 else {"channel_id": {"$in": part}}
                offset = 0
                while True:
                    got = self.collection.get(where=where, include=["embeddings", "metadatas"],
                                              limit=4000, offset=offset)
                    for cid_, emb, meta in zip(got["ids"], got["embeddings"], got["metadatas"]):
                        bucket = loaded[str(meta["channel_id"])]
                        bucket[0].append(cid_)
                        bucket[1].append(emb)
                        bucket[2].append(str(meta.get("post_ids", "")))
                    if len(got["ids"]) < 4000:
                        break
                    offset += 4000
            for cid, (cids, embs, cposts) in loaded.items():
                mat = np.asarray(embs, dtype=np.float32).reshape(len(cids), -1)
                self._cache.put(cid, missing[cid], cids, mat, cposts)
                ids.extend(cids)
                mats.append(mat)
                posts.extend(cposts)
        if not mats:
            return [], np.zeros((0, 0), dtype=np.float32), []
        return ids, (np.concatenate(mats) if len(mats) > 1 else mats[0]), posts

    def centroid(self, *, sample: int = 5000, max_age_s: float = 600.0) -> np.ndarray | None:
        """The normalised mean embedding of the collection, estimated from at most ``sample``
        chunks read in pages spread over it, kept ``max_age_s``: the direction every text of
        this workspace shares (one 384-number average of thousands of chunks, the same for
        every reader, never shown; a reader's profile is centred on it so that what ranks is
        what sets the reader apart)."""
        now = time.monotonic()
        if self._centroid is not None and now - self._centroid[0] < max_age_s:
            return self._centroid[1]
        total = self.count()
        if total <= 0:
            return None
        pages = max(1, min(10, sample // 500))
        step = max(total // pages, 1)
        rows = []
        for offset in range(0, total, step)[:pages]:
            got = self.collection.get(include=["embeddings"], limit=min(500, sample),
                                      offset=offset)
            if len(got["ids"]):
                rows.append(np.asarray(got["embeddings"], dtype=np.float32))
        if not rows:
            return None
        mean = np.concatenate(rows).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        self._centroid = (now, mean / norm if norm else None)
        return self._centroid[1]

    def search_posts(self, query: np.ndarray, scope: Scope, post_ids: set[str], k: int
                     ) -> list[Hit]:
        """The k chunks of the scope's channels that hold any of ``post_ids``, most similar
        first (a summary's follow-up reads its source posts this way)."""
        if not post_ids or scope.empty:
            return []
        ids, mat, posts = self._channel_rows(scope)
        rows = [i for i, p in enumerate(posts) if not post_ids.isdisjoint(p.split(","))]
        if not rows:
            return []
        sims = mat[rows] @ query.astype(np.float32)
        order = np.argsort(-sims, kind="stable")[:k]
        return self._fetch([ids[rows[i]] for i in order], [float(sims[i]) for i in order], scope)

    def warm(self, channels: dict[str, tuple[int, int]], batch: int = 200) -> int:
        """Load channels' embeddings into the cache ahead of queries (at most the cache size);
        returns the rows loaded. Used by ``openops serve`` in a background thread."""
        items = sorted(channels.items(), key=lambda kv: -kv[1][0])
        budget = self._cache.max_rows
        rows = 0
        for i in range(0, len(items), batch):
            part = {c: v for c, v in items[i : i + batch] if v[0] > 0}
            n = sum(v[0] for v in part.values())
            if rows + n > budget:
                break
            self._channel_embeddings(Scope(user_id=None, channels=part))
            rows += n
        return rows

    def _fetch(self, ids: list[str], scores: list[float], scope: Scope) -> list[Hit]:
        if not ids:
            return []
        by_id = {i: rec for i in ids if (rec := self._records.get(i, scope)) is not None}
        missing = [i for i in ids if i not in by_id]
        if missing:
            got = self.collection.get(ids=missing, include=["documents", "metadatas"])
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"]):
                rec = (d or "", dict(m or {}))
                by_id[i] = rec
                self._records.put(i, scope, str(rec[1].get("channel_id", "")), rec)
        return [
            Hit(id=i, score=s, text=by_id[i][0], metadata=dict(by_id[i][1]))
            for i, s in zip(ids, scores)
            if i in by_id
        ]

    def thread_chunks(self, threads: list[tuple[str, str]], scope: Scope
                      ) -> dict[tuple[str, str], list[Hit]]:
        """The message chunks of each ``(thread_id, channel_id)`` (only of channels the scope
        holds), in thread order. One index read for the threads not already cached."""
        out: dict[tuple[str, str], list[Hit]] = {}
        missing: list[tuple[str, str]] = []
        for key in threads:
            if key[1] not in scope.channels:
                continue
            cached = self._threads.get(key, scope)
            if cached is None:
                missing.append(key)
            else:
                out[key] = [Hit(h.id, 0.0, h.text, dict(h.metadata)) for h in cached]
        if missing:
            where_thread = ({"thread_id": missing[0][0]} if len(missing) == 1
                            else {"thread_id": {"$in": sorted({t for t, _ in missing})}})
            got = self.collection.get(where={"$and": [where_thread, {"source": "message"}]},
                                      include=["documents", "metadatas"])
            found: dict[tuple[str, str], list[Hit]] = {key: [] for key in missing}
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"]):
                meta = dict(m or {})
                # the channel must match too: a thread id is only unique within its channel
                key = (str(meta.get("thread_id")), str(meta.get("channel_id")))
                if key in found:
                    found[key].append(Hit(i, 0.0, d or "", meta))
            for key, hits in found.items():
                hits.sort(key=lambda h: int(h.metadata.get("first_ts", 0)))
                self._threads.put(key, scope, key[1], hits)
                out[key] = [Hit(h.id, 0.0, h.text, dict(h.metadata)) for h in hits]
        return out

    def _scope_embeddings(self, scope: Scope) -> tuple[list[str], np.ndarray]:
        key = _ScopeCache.key(scope)
        hit = self._scopes.get(key)
        if hit is not None:
            return hit
        ids, mat = self._channel_embeddings(scope)
        self._scopes.put(key, ids, mat)
        return ids, mat

    def search_exact(self, query: np.ndarray, scope: Scope, k: int) -> list[Hit]:
        ids, mat = self._scope_embeddings(scope)
        if not ids:
            return []
        sims = mat @ query.astype(np.float32)
        n = min(k, len(ids))
        top = np.argpartition(-sims, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
        top = top[np.argsort(-sims[top], kind="stable")]
        return self._fetch([ids[i] for i in top], [float(sims[i]) for i in top], scope)

    def search_unfiltered(self, query: np.ndarray, n: int) -> list[Hit]:
        res = self.collection.query(
            query_embeddings=[query.astype(np.float32)],
            n_results=n,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(id=i, score=1.0 - float(d), text=doc or "", metadata=dict(m or {}))
            for i, doc, m, d in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]
            )
        ]

    def search(self, query: np.ndarray, scope: Scope, k: int, *, total: int | None = None) -> list[Hit]:
        """The k best chunks the scope may read (never one it may not)."""
        if scope.empty or k <= 0:
            return []
        readable = scope.chunk_count
        if readable <= 0:
            return []
        if readable <= self.exact_scope_max_chunks:
            return self.search_exact(query, scope, k)
        total = total if total is not None else self.count()
        if total <= 0:
            return []
        share = min(1.0, readable / total)
        n = min(total, math.ceil(k / share * 1.5) + k)
        while True:
            hits = [
                h
                for h in self.search_unfiltered(query, n)
                if scope.allows(str(h.metadata.get("channel_id")))
            ]
            if len(hits) >= k or n >= total:
                return hits[:k]
            if n >= 4096:
                log.debug("over-fetch starved at n=%d; exact fallback over %d chunks", n, readable)
                return self.search_exact(query, scope, k)
            n = min(total, n * 4)
