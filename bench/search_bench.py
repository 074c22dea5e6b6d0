"""Permission-scoped search at scale: ``ChunkIndex.search`` against an unfiltered ANN query.

Usage::

    .venv/bin/python bench/search_bench.py            # 200,000 chunks over 2,000 channels
    .venv/bin/python bench/search_bench.py --quick    # 20,000 chunks over 200 channels

The first run builds a corpus (real text, real embeddings) and caches it under
``$OPENOPS_BENCH_HOME`` (default ``/work/main/var/bench``); later runs reuse it. The build is
resumable: it checkpoints after every embedding batch and every Chroma write, stops cleanly when
``--build-minutes`` runs out, and the next run continues where it stopped.

Corpus: 1-3 consecutive turns of the LiveChat dialogues and QMSum meetings form one chunk text
("speaker: text" lines), all distinct. Channel sizes follow a Zipf law (exponent ``--zipf``);
a dialogue or meeting is kept inside one channel unless it is larger than the room left in the
channel with the most room, in which case it continues, in order, in the next such channel. Queries are turns
held out of the corpus (no indexed text contains them), embedded once up front.

Measured per simulated user (a random subset of channels, ``Scope`` built directly with the true
chunk counts): cold first query (fills the scope cache), then p50/p95 of ``ChunkIndex.search``
over the timed queries, each paired in time with an unfiltered ``search_unfiltered`` query (a
different query of the same set, so the HNSW walk is not pre-warmed by its twin); recall@8
against brute-force exact scoped search in numpy; and Chroma's own filtered query
(``where={"channel_id": {"$in": [...]}}``) on a few queries for comparison. Figures only:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata

from ingest import ids
from rag.index import ChunkIndex, open_chroma
from rag.permissions import Scope

FORMAT = 1  # bump when the corpus recipe changes: a new cache directory is used
COLLECTION = "bench"
K = 8
GOAL_RATIO = 3.0
GOAL_RECALL = 0.95
HELD_OUT = 400  # query turns held out of the corpus (timed queries + one warm-up per user)
EMBED_CALL = 2048  # texts per Embedder.encode call during the build (one checkpoint each)
WRITE_CALL = 8000  # rows per ChunkIndex.upsert call during the build


# ---------------------------------------------------------------------------------------------
# configuration and output helpers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusConfig:
    chunks: int
    channels: int
    teams: int
    zipf: float
    seed: int
    format: int = FORMAT

    @property
    def key(self) -> str:
        return (f"search-{self.chunks}x{self.channels}-z{self.zipf:g}-t{self.teams}"
                f"-s{self.seed}-f{self.format}")


def log(msg: str = "") -> None:
    print(msg, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else math.nan


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


class Ticker:
    """Progress: a rich bar on a terminal, a line every ~10% (or 60 s) in a log file."""

    def __init__(self, label: str, total: int, done: int = 0):
        self.label, self.total, self.done = label, total, done
        self.t0 = time.perf_counter()
        self.start_done = done
        self._next_pct = 10 * (int(100 * done / max(1, total)) // 10 + 1)
        self._last_line = self.t0
        self._progress = None
        if sys.stdout.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                      TimeElapsedColumn(), TimeRemainingColumn())
            self._progress.start()
            self._task = self._progress.add_task(label, total=total, completed=done, rate="")

    def rate(self) -> float:
        return (self.done - self.start_done) / max(1e-9, time.perf_counter() - self.t0)

    def advance(self, n: int) -> None:
        self.done += n
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, rate=f"{self.rate():.0f}/s")
            return
        now = time.perf_counter()
        percent = 100 * self.done / max(1, self.total)
        if percent >= self._next_pct or now - self._last_line >= 60 or self.done >= self.total:
            self._next_pct = 10 * (int(percent) // 10 + 1)
            self._last_line = now
            log(f"  {self.label}: {self.done:,}/{self.total:,} ({percent:.0f}%), "
                f"{self.rate():.0f}/s, {now - self.t0:.0f}s elapsed, load {loadavg()}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


# ---------------------------------------------------------------------------------------------
# corpus plan (deterministic from the config; cheap, so re-derived instead of cached)
# ---------------------------------------------------------------------------------------------
@dataclass
class Plan:
    texts: list[str]  # row order: channel after channel
    row_channel: np.ndarray  # int32 channel index of each row
    channel_ids: list[str]
    channel_team_ids: list[str]
    channel_sizes: np.ndarray  # int64 chunks per channel
    query_texts: list[str]  # held-out turns
    sources: int
    sources_split: int  # dialogues/meetings that had to continue in another channel
    available_texts: int  # distinct 1-3 turn windows before subsampling

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for t in self.texts[:: max(1, len(self.texts) // 2000)]:
            h.update(t.encode())
        h.update(self.row_channel.tobytes())
        return h.hexdigest()


def zipf_sizes(total: int, channels: int, s: float, rng: np.random.Generator,
               min_size: int = 3) -> np.ndarray:
    """Channel sizes (in random channel order) proportional to rank^-s, summing to ``total``."""
    if total < channels * min_size:
        raise ValueError(f"{total} chunks cannot fill {channels} channels of >= {min_size}")
    ranks = np.arange(1, channels + 1, dtype=np.float64)
    raw = ranks**-s
    raw = raw / raw.sum() * total
    sizes = np.maximum(min_size, np.floor(raw)).astype(np.int64)
    diff = total - int(sizes.sum())
    if diff > 0:  # largest fractional remainders first
        order = np.argsort(-(raw - np.floor(raw)))
        sizes[order[:diff]] += 1
    i = 0
    while diff < 0:  # take back from the largest channels
        take = min(-diff, int(sizes[i] - min_size))
        sizes[i] -= take
        diff += take
        i += 1
    return sizes[rng.permutation(channels)]


def pick_held_out(sources: list[benchdata.Source], n: int,
                  rng: np.random.Generator) -> list[tuple[int, int]]:
    """(source, turn) pairs of query-like turns: half from chat, half from meetings."""
    pools: dict[str, list[tuple[int, int]]] = {"chat": [], "meeting": []}
    for si, src in enumerate(sources):
        for ti, t in enumerate(src.turns):
            words = len(t.text.split())
            if 6 <= words and 30 <= len(t.text) <= 400:
                pools[src.kind].append((si, ti))
    chosen: list[tuple[int, int]] = []
    for kind, share in (("chat", n // 2), ("meeting", n - n // 2)):
        pool = pools[kind]
        idx = rng.choice(len(pool), size=min(share, len(pool)), replace=False)
        chosen.extend(pool[i] for i in idx)
    return [chosen[i] for i in rng.permutation(len(chosen))]


def make_plan(cfg: CorpusConfig) -> Plan:
    rng = np.random.default_rng(cfg.seed)
    sources = benchdata.load_all()
    held_list = pick_held_out(sources, HELD_OUT, rng)
    held_set = set(held_list)

    # every distinct window of 1-3 consecutive turns that contains no held-out turn
    seen: set[str] = set()
    windows: list[tuple[int, str]] = []  # (source, text) in source order
    for si, src in enumerate(sources):
        turns = src.turns
        for i in range(len(turns)):
            for width in (1, 2, 3):
                if i + width > len(turns):
                    break
                if any((si, j) in held_set for j in range(i, i + width)):
                    continue
                text = benchdata.format_turns(turns[i : i + width])
                if text not in seen:
                    seen.add(text)
                    windows.append((si, text))
    if len(windows) < cfg.chunks:
        raise SystemExit(f"only {len(windows):,} distinct windows, {cfg.chunks:,} requested")
    keep = np.sort(rng.choice(len(windows), size=cfg.chunks, replace=False))
    per_source: dict[int, list[str]] = {}
    for w in keep:
        si, text = windows[int(w)]
        per_source.setdefault(si, []).append(text)

    # Zipf channel sizes; each source goes whole into the channel with the largest deficit,
    # continuing in the next one only if it does not fit
    sizes = zipf_sizes(cfg.chunks, cfg.channels, cfg.zipf, rng)
    heap = [(-int(sz), c) for c, sz in enumerate(sizes)]
    heapq.heapify(heap)
    members: list[list[str]] = [[] for _ in range(cfg.channels)]
    split = 0
    for si in sorted(per_source, key=lambda s: (-len(per_source[s]), s)):
        texts = per_source[si]
        parts = 0
        while texts:
            deficit, c = heapq.heappop(heap)
            take = min(-deficit, len(texts))
            members[c].extend(texts[:take])
            texts = texts[take:]
            parts += 1
            if -deficit - take > 0:
                heapq.heappush(heap, (deficit + take, c))
        split += parts > 1
    assert all(len(m) == sz for m, sz in zip(members, sizes))

    team_names = [f"team-{t:02d}" for t in range(cfg.teams)]
    team_of = rng.integers(0, cfg.teams, size=cfg.channels)
    channel_ids = [ids.channel_id(team_names[team_of[c]], f"ch-{c:04d}") for c in range(cfg.channels)]
    channel_team_ids = [ids.team_id(team_names[team_of[c]]) for c in range(cfg.channels)]
    texts = [t for m in members for t in m]
    row_channel = np.repeat(np.arange(cfg.channels, dtype=np.int32), sizes)
    query_texts = [sources[si].turns[ti].text for si, ti in held_list]
    return Plan(texts, row_channel, channel_ids, channel_team_ids, sizes.astype(np.int64),
                query_texts, len(per_source), split, len(windows))


# ---------------------------------------------------------------------------------------------
# the cache: build (resumable) and load
# ---------------------------------------------------------------------------------------------
def row_id(row: int) -> str:
    return f"r{row:07d}"


class Cache:
    def __init__(self, root: Path, cfg: CorpusConfig):
        self.cfg = cfg
        self.dir = root / cfg.key
        self.manifest = self.dir / "manifest.json"
        self.progress = self.dir / "progress.json"
        self.emb = self.dir / "embeddings.npy"
        self.rows = self.dir / "row_channel.npy"
        self.queries = self.dir / "queries.npy"
        self.channels = self.dir / "channels.json"
        self.chroma = self.dir / "chroma"

    def complete(self) -> bool:
        if not self.manifest.exists():
            return False
        try:
            m = json.loads(self.manifest.read_text())
        except ValueError:
            return False
        return (m.get("config") == asdict(self.cfg) and m.get("count") == self.cfg.chunks
                and all(p.exists() for p in (self.emb, self.rows, self.queries, self.channels,
                                             self.chroma)))

    def read_progress(self) -> dict[str, Any]:
        try:
            return json.loads(self.progress.read_text())
        except (OSError, ValueError):
            return {}

    def write_progress(self, state: dict[str, Any]) -> None:
        tmp = self.progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.progress)


def build(cache: Cache, budget_s: float) -> bool:
    """Build or continue building the cached corpus. False if the time budget ran out."""
    cfg = cache.cfg
    t_start = time.perf_counter()
    deadline = t_start + budget_s
    cache.dir.mkdir(parents=True, exist_ok=True)
    log(f"building corpus in {cache.dir}")
    t = time.perf_counter()
    plan = make_plan(cfg)
    fp = plan.fingerprint()
    log(f"  plan: {len(plan.texts):,} texts from {plan.available_texts:,} distinct 1-3 turn windows "
        f"of {plan.sources} dialogues/meetings ({plan.sources_split} span 2+ channels); "
        f"channel sizes {int(plan.channel_sizes.max()):,} max, "
        f"{int(np.median(plan.channel_sizes))} median, {int(plan.channel_sizes.min())} min "
        f"[{time.perf_counter() - t:.1f}s]")
    state = cache.read_progress()
    if state.get("fingerprint") != fp:
        state = {"fingerprint": fp, "embedded": 0, "written": 0, "seconds": {}}
        for p in (cache.emb, cache.manifest):
            p.unlink(missing_ok=True)
        if cache.chroma.exists():
            import shutil

            shutil.rmtree(cache.chroma)
    np.save(cache.rows, plan.row_channel)
    cache.channels.write_text(json.dumps({
        "ids": plan.channel_ids, "team_ids": plan.channel_team_ids,
        "sizes": plan.channel_sizes.tolist(), "sources": plan.sources,
        "sources_split": plan.sources_split,
    }))

    from rag.embeddings import Embedder

    t = time.perf_counter()
    embedder = Embedder()
    log(f"  embedder: {Path(embedder.name).name} dim={embedder.dimension} bf16={embedder.bf16} "
        f"[{time.perf_counter() - t:.1f}s]")
    dim = embedder.dimension

    # queries: held-out turns, embedded once
    if not cache.queries.exists():
        np.save(cache.queries, embedder.encode(plan.query_texts))
        (cache.dir / "queries.json").write_text(json.dumps(plan.query_texts, indent=0))

    # embeddings, shortest texts first (least padding), written at their row positions
    n = len(plan.texts)
    order = np.argsort(np.fromiter((len(t) for t in plan.texts), dtype=np.int64, count=n),
                       kind="stable")
    mode = "r+" if cache.emb.exists() and state["embedded"] > 0 else "w+"
    emb = np.lib.format.open_memmap(cache.emb, mode=mode, dtype=np.float32, shape=(n, dim))
    done = int(state["embedded"])
    if done < n:
        tick = Ticker("embedding", n, done)
        t = time.perf_counter()
        try:
            while done < n:
                if time.perf_counter() > deadline:
                    log(f"  build budget used up at {done:,}/{n:,} embedded: run again to continue")
                    return False
                rows = order[done : done + EMBED_CALL]
                emb[rows] = embedder.encode([plan.texts[r] for r in rows])
                emb.flush()
                done += len(rows)
                state["embedded"] = done
                state["seconds"]["embed"] = state["seconds"].get("embed", 0.0) + (
                    time.perf_counter() - t)
                t = time.perf_counter()
                cache.write_progress(state)
                tick.advance(len(rows))
        finally:
            tick.close()
        log(f"  embedded {n:,} texts in {state['seconds']['embed']:.0f}s "
            f"({n / state['seconds']['embed']:.0f}/s over all sessions)")
    del embedder

    # Chroma, channel after channel (as the indexer writes); upserts are idempotent, so a
    # resumed build redoes at most the last call
    index = ChunkIndex(open_chroma(None, str(cache.chroma)), COLLECTION)
    written = int(state["written"])
    if written < n:
        tick = Ticker("writing to Chroma", n, written)
        t = time.perf_counter()
        try:
            while written < n:
                if time.perf_counter() > deadline:
                    log(f"  build budget used up at {written:,}/{n:,} written: run again to continue")
                    return False
                hi = min(n, written + WRITE_CALL)
                rows = range(written, hi)
                index.upsert(
                    [row_id(r) for r in rows],
                    np.ascontiguousarray(emb[written:hi]),
                    [plan.texts[r] for r in rows],
                    [{"channel_id": plan.channel_ids[c], "team_id": plan.channel_team_ids[c],
                      "channel_type": "O"} for c in plan.row_channel[written:hi].tolist()],
                )
                tick.advance(hi - written)
                written = hi
                state["written"] = written
                state["seconds"]["write"] = state["seconds"].get("write", 0.0) + (
                    time.perf_counter() - t)
                t = time.perf_counter()
                cache.write_progress(state)
        finally:
            tick.close()
        log(f"  wrote {n:,} rows in {state['seconds']['write']:.0f}s "
            f"({n / state['seconds']['write']:.0f}/s over all sessions)")
    count = index.count()
    if count != n:
        log(f"  Chroma holds {count:,} rows, expected {n:,}: rebuild with --rebuild")
        return False
    cache.manifest.write_text(json.dumps({
        "config": asdict(cfg), "count": n, "fingerprint": fp, "build_seconds": state["seconds"],
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=2))
    log(f"  build done: embed {state['seconds'].get('embed', 0):.0f}s, "
        f"write {state['seconds'].get('write', 0):.0f}s (this session {time.perf_counter() - t_start:.0f}s)")
    return True


# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
@dataclass
class Probe:
    """Counts what ChunkIndex.search does, by wrapping its bound methods on the instance."""

    unfiltered_ns: list[int] = field(default_factory=list)
    exact_calls: int = 0

    def attach(self, index: ChunkIndex) -> None:
        orig_unfiltered, orig_exact = index.search_unfiltered, index.search_exact

        def unfiltered(query: np.ndarray, n: int):  # type: ignore[no-untyped-def]
            self.unfiltered_ns.append(n)
            return orig_unfiltered(query, n)

        def exact(query: np.ndarray, scope: Scope, k: int):  # type: ignore[no-untyped-def]
            self.exact_calls += 1
            return orig_exact(query, scope, k)

        index.search_unfiltered = unfiltered  # type: ignore[method-assign]
        index.search_exact = exact  # type: ignore[method-assign]

    def reset(self) -> None:
        self.unfiltered_ns.clear()
        self.exact_calls = 0


@dataclass
class UserResult:
    name: str
    channels: int
    chunks: int
    strategy: str
    cold_s: float
    lat: list[float]
    base: list[float]  # paired unfiltered latencies
    recall: float
    leaks: int
    short: int  # queries answered with fewer than K hits although K readable chunks exist
    fetches_per_query: float = 0.0
    refetch_share: float = 0.0
    exact_fallbacks: int = 0
    mean_n: float = 0.0
    naive: list[float] = field(default_factory=list)
    naive_recall: float = math.nan


def exact_truth(emb: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int) -> list[set[str]]:
    """The k best rows of the scope for each query, by brute force (float32, like the index)."""
    out: list[set[str]] = []
    sub = emb[rows]
    for start in range(0, len(queries), 64):
        sims = sub @ queries[start : start + 64].T  # rows x q
        kk = min(k, len(rows))
        top = np.argpartition(-sims, kk - 1, axis=0)[:kk] if kk < len(rows) else None
        for j in range(sims.shape[1]):
            sel = top[:, j] if top is not None else np.arange(len(rows))
            out.append({row_id(int(rows[i])) for i in sel})
    return out


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t = time.perf_counter()
    res = fn(*args, **kwargs)
    return time.perf_counter() - t, res


def run_user(index: ChunkIndex, probe: Probe, name: str, chan_idx: np.ndarray,
             channel_ids: list[str], sizes: np.ndarray, row_channel: np.ndarray,
             emb: np.ndarray, queries: np.ndarray, warm_query: np.ndarray, total: int,
             naive_queries: int) -> UserResult:
    scope = Scope(user_id=name,
                  channels={channel_ids[c]: (int(sizes[c]), 1) for c in chan_idx.tolist()})
    chunks = scope.chunk_count
    strategy = "exact" if chunks <= index.exact_scope_max_chunks else "over-fetch"
    cold, _ = timed(index.search, warm_query, scope, K, total=total)

    nq = len(queries)
    lat: list[float] = []
    base: list[float] = []
    got: list[list[str]] = []
    probe.reset()
    fetch_calls = 0
    refetches = 0
    first_ns: list[int] = []
    for i in range(nq):
        # paired baseline: another query of the set, right before, so both see the same load
        dt, _ = timed(index.search_unfiltered, queries[(i + nq // 2) % nq], K)
        base.append(dt)
        before = len(probe.unfiltered_ns)
        if hasattr(index, "_records"):
            # each query reads its documents from Chroma, as a first question does: the record
            # cache would serve the chunks earlier queries of this loop already fetched
            index._records._data.clear()
        dt, hits = timed(index.search, queries[i], scope, K, total=total)
        lat.append(dt)
        got.append([h.id for h in hits])
        calls = len(probe.unfiltered_ns) - before
        if calls:
            first_ns.append(probe.unfiltered_ns[before])
        fetch_calls += calls
        refetches += calls > 1
    rows = np.flatnonzero(np.isin(row_channel, chan_idx))
    truth = exact_truth(emb, rows, queries, K)
    recall = float(np.mean([len(set(g) & t) / len(t) for g, t in zip(got, truth)]))
    allowed = set(np.asarray(channel_ids)[chan_idx].tolist())
    row_chan_ids = np.asarray(channel_ids)
    leaks = sum(1 for g in got for rid in g
                if row_chan_ids[row_channel[int(rid[1:])]] not in allowed)
    short = sum(1 for g in got if len(g) < min(K, len(rows)))
    res = UserResult(name, len(chan_idx), chunks, strategy, cold, lat, base, recall, leaks, short,
                     fetches_per_query=fetch_calls / nq, refetch_share=refetches / nq,
                     exact_fallbacks=probe.exact_calls - (nq if strategy == "exact" else 0),
                     mean_n=float(np.mean(first_ns)) if first_ns else 0.0)

    if naive_queries > 0:
        where = {"channel_id": {"$in": [channel_ids[c] for c in chan_idx.tolist()]}}
        hits_naive: list[set[str]] = []
        for i in range(naive_queries):
            dt, r = timed(index.collection.query,
                          query_embeddings=[queries[i].astype(np.float32)], n_results=K,
                          where=where, include=["documents", "metadatas", "distances"])
            res.naive.append(dt)
            hits_naive.append(set(r["ids"][0]))
        res.naive_recall = float(np.mean([len(h & t) / len(t)
                                          for h, t in zip(hits_naive, truth[:naive_queries])]))
    return res


def diagnostics(index: ChunkIndex, r: UserResult, scope: Scope, query: np.ndarray) -> str:
    """Where the time of one warm query goes (median of a few repetitions)."""
    reps = 15

    def med(fn: Callable[[], Any]) -> str:
        return ms(pct([timed(fn)[0] for _ in range(reps)], 50))

    if r.strategy == "over-fetch":
        n = int(r.mean_n) or K
        return (f"  {r.name}: unfiltered query n={K} {med(lambda: index.search_unfiltered(query, K))}"
                f" ms, n={n} {med(lambda: index.search_unfiltered(query, n))} ms, "
                f"n={4 * n} {med(lambda: index.search_unfiltered(query, 4 * n))} ms")
    # what a warm query pays to get the scope's matrix: the assembled-scope cache when the index
    # has one (``_scope_embeddings``), else re-stacking the cached channel matrices
    scope_matrix = getattr(index, "_scope_embeddings", index._channel_embeddings)
    ids_, mat = scope_matrix(scope)
    sims = mat @ query
    top = np.argsort(-sims)[:K]
    restack = (f" (re-stacking the channel matrices: {med(lambda: index._channel_embeddings(scope))}"
               " ms)" if scope_matrix != index._channel_embeddings else "")
    top_ids, top_scores = [ids_[i] for i in top], [float(sims[i]) for i in top]

    def fetch_from_chroma() -> None:
        records = getattr(index, "_records", None)
        if records is not None:  # a question's first read of these chunks
            records._data.clear()
        index._fetch(top_ids, top_scores, scope)

    cached = (f" (read again, from the record cache: "
              f"{med(lambda: index._fetch(top_ids, top_scores, scope))} ms)"
              if hasattr(index, "_records") else "")
    return (f"  {r.name}: scope matrix of {len(ids_):,} rows {med(lambda: scope_matrix(scope))} ms"
            f"{restack}, matmul {med(lambda: mat @ query)} ms, fetch {K} docs by id "
            f"{med(fetch_from_chroma)} ms{cached}")


def hnsw_config(index: ChunkIndex) -> str:
    """The collection's HNSW settings as Chroma reports them (ef_search may change at open)."""
    try:
        cfg = (index.collection.configuration or {}).get("hnsw") or {}
    except Exception:  # noqa: BLE001 - older clients
        return "n/a"
    return ", ".join(f"{k}={cfg.get(k)}" for k in ("ef_construction", "ef_search", "max_neighbors"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 chunks over 200 channels")
    ap.add_argument("--chunks", type=int, default=None,
                    help="corpus size; None: 200,000 (20,000 with --quick)")
    ap.add_argument("--channels", type=int, default=None,
                    help="channel count; None: 2,000 (200 with --quick)")
    ap.add_argument("--teams", type=int, default=10)
    ap.add_argument("--zipf", type=float, default=1.0, help="channel size exponent")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scopes", type=int, nargs="+", default=[5, 50, 500, 2000],
                    help="channels per simulated user (capped at the channel count)")
    ap.add_argument("--users-per-scope", type=int, default=1)
    ap.add_argument("--queries", type=int, default=200, help="timed queries per user")
    ap.add_argument("--naive-queries", type=int, default=8,
                    help="Chroma $in-filtered queries for the 50- and 500-channel users")
    ap.add_argument("--exact-max", type=int, default=None,
                    help="ChunkIndex exact_scope_max_chunks; None: the ChunkIndex default")
    ap.add_argument("--home", type=Path,
                    default=Path(os.environ.get("OPENOPS_BENCH_HOME", "/work/main/var/bench")))
    ap.add_argument("--build-minutes", type=float, default=18.0,
                    help="stop building after this long (the next run resumes)")
    ap.add_argument("--rebuild", action="store_true", help="discard the cached corpus")
    args = ap.parse_args(argv)

    chunks = args.chunks or (20_000 if args.quick else 200_000)
    channels = args.channels or (200 if args.quick else 2_000)
    cfg = CorpusConfig(chunks, channels, args.teams, args.zipf, args.seed)
    cache = Cache(args.home, cfg)
    t_main = time.perf_counter()
    log(f"search_bench: {chunks:,} chunks over {channels:,} channels; cache {cache.dir}; "
        f"load average {loadavg()} on {os.cpu_count()} CPUs")
    if args.rebuild and cache.dir.exists():
        import shutil

        shutil.rmtree(cache.dir)
    if not cache.complete():
        if not build(cache, args.build_minutes * 60):
            return 2
    else:
        log("  reusing the cached corpus")

    meta = json.loads(cache.channels.read_text())
    channel_ids: list[str] = meta["ids"]
    sizes = np.asarray(meta["sizes"], dtype=np.int64)
    row_channel = np.load(cache.rows)
    emb = np.load(cache.emb)  # all in RAM: ~300 MB at 200k x 384
    qall = np.load(cache.queries)
    nq = min(args.queries, len(qall) - 64)
    queries, warmups = qall[:nq], qall[nq:]
    log(f"  corpus: {len(emb):,} x {emb.shape[1]} embeddings, channel sizes "
        f"{int(sizes.max()):,} max / {int(np.median(sizes))} median / {int(sizes.min())} min, "
        f"{meta['sources']} dialogues/meetings ({meta['sources_split']} span 2+ channels); "
        f"{nq} timed queries")

    kwargs = {} if args.exact_max is None else {"exact_scope_max_chunks": args.exact_max}
    t = time.perf_counter()
    index = ChunkIndex(open_chroma(None, str(cache.chroma)), COLLECTION, **kwargs)
    total = index.count()
    open_s = time.perf_counter() - t
    cold_unf, _ = timed(index.search_unfiltered, warmups[-1], K)
    for q in warmups[-16:]:
        index.search_unfiltered(q, K)
    hnsw = hnsw_config(index)
    log(f"  open Chroma {open_s:.2f}s; first unfiltered query {ms(cold_unf)} ms (index load); "
        f"exact_scope_max_chunks={index.exact_scope_max_chunks:,}; HNSW {hnsw}")
    probe = Probe()
    probe.attach(index)

    rng = np.random.default_rng(args.seed + 1)
    scopes = sorted({min(s, channels) for s in args.scopes})
    results: list[UserResult] = []
    diag: list[str] = []
    w = 0
    for size in scopes:
        for u in range(args.users_per_scope):
            chan_idx = np.sort(rng.choice(channels, size=size, replace=False)).astype(np.int32)
            name = f"u{size}" + (f".{u}" if args.users_per_scope > 1 else "")
            naive = args.naive_queries if size in (50, 500) and u == 0 else 0
            t = time.perf_counter()
            r = run_user(index, probe, name, chan_idx, channel_ids, sizes, row_channel, emb,
                         queries, warmups[w % len(warmups)], total, naive)
            w += 1
            results.append(r)
            log(f"  {name}: {r.channels} channels, {r.chunks:,} chunks, {r.strategy}, "
                f"p50 {ms(pct(r.lat, 50))} ms, recall {r.recall:.3f} [{time.perf_counter() - t:.1f}s]")
            scope = Scope(name, {channel_ids[c]: (int(sizes[c]), 1) for c in chan_idx.tolist()})
            diag.append(diagnostics(index, r, scope, queries[0]))

    base_all = [x for r in results for x in r.base]
    ub50, ub95 = pct(base_all, 50), pct(base_all, 95)
    log()
    log(f"RESULTS  {total:,} chunks / {channels:,} channels, k={K}, {nq} queries per user, "
        f"exact_scope_max_chunks={index.exact_scope_max_chunks:,}, HNSW {hnsw}, "
        f"load average {loadavg()}")
    log(f"goals: p50 and p95 ratio to the unfiltered query <= {GOAL_RATIO:g}; recall@{K} >= "
        f"{GOAL_RECALL:g}; ratios use the unfiltered query paired with each scoped query")
    header = (f"{'user':<7} {'channels':>8} {'chunks':>8} {'strategy':<10} {'cold ms':>8} "
              f"{'p50 ms':>7} {'p95 ms':>7} {'unf p50':>7} {'unf p95':>7} {'p50 x':>6} "
              f"{'p95 x':>6} {'recall@8':>8}  goals")
    log(header)
    log("-" * len(header))
    log(f"{'unfilt.':<7} {channels:>8} {total:>8} {'ANN':<10} {ms(cold_unf):>8} {ms(ub50):>7} "
        f"{ms(ub95):>7} {'':>7} {'':>7} {'1.00':>6} {'1.00':>6} {'-':>8}")
    for r in results:
        b50, b95 = pct(r.base, 50), pct(r.base, 95)
        x50, x95 = pct(r.lat, 50) / b50, pct(r.lat, 95) / b95
        ok = (x50 <= GOAL_RATIO, x95 <= GOAL_RATIO, r.recall >= GOAL_RECALL)
        verdict = "ok" if all(ok) else "MISS " + ",".join(
            n for n, good in zip(("p50", "p95", "recall"), ok) if not good)
        log(f"{r.name:<7} {r.channels:>8} {r.chunks:>8} {r.strategy:<10} {ms(r.cold_s):>8} "
            f"{ms(pct(r.lat, 50)):>7} {ms(pct(r.lat, 95)):>7} {ms(b50):>7} {ms(b95):>7} "
            f"{x50:>6.2f} {x95:>6.2f} {r.recall:>8.3f}  {verdict}")
    log()
    log("search behaviour per user (over-fetch: unfiltered calls per query, share of queries that "
        "had to re-fetch, exact fallbacks; checks: hits outside the scope, short answers)")
    for r in results:
        extra = (f"mean first n={r.mean_n:.0f}, {r.fetches_per_query:.2f} fetches/query, "
                 f"{r.refetch_share:.1%} re-fetched, {r.exact_fallbacks} exact fallbacks"
                 if r.strategy == "over-fetch" else "one exact scoring per query")
        log(f"  {r.name}: {extra}; leaks {r.leaks}, short answers {r.short}")
    if diag:
        log("where a warm query spends its time (median of 15 repetitions of one query):")
        for line in diag:
            log(line)
    naive = [r for r in results if r.naive]
    if naive:
        log(f"Chroma's own filtered query (where channel_id $in [...]), {args.naive_queries} queries:")
        for r in naive:
            log(f"  {r.name} ({r.channels} channels, {r.chunks:,} chunks): p50 "
                f"{ms(pct(r.naive, 50))} ms, max {ms(max(r.naive))} ms, "
                f"{pct(r.naive, 50) / pct(r.base, 50):.1f}x unfiltered p50, "
                f"recall@{K} {r.naive_recall:.3f}; ChunkIndex.search p50 {ms(pct(r.lat, 50))} ms")
    log(f"wall time {time.perf_counter() - t_main:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
