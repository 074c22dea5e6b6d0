"""End-to-end ingest throughput against the bare embedding model.

Usage::

    .venv/bin/python bench/ingest_bench.py            # ~3,000 posts over ~20 channels
    .venv/bin/python bench/ingest_bench.py --quick    # ~600 posts

Generates, in a temporary directory, a Mattermost bulk export (JSONL version 1: version, team,
channel, user, post lines with replies) from real conversation text: LiveChat Gitter dialogues
become threads (first message = root, the rest = replies) in one channel per Gitter room, and
QMSum meetings become threads of consecutive turns (and, for a fifth of them, runs of
un-threaded posts, so both chunker paths run) in meeting channels. Then, with a fresh
``Runtime`` home, it times the real pipeline in-process:

* ``BulkLoader(rt.db).load(path)``  (JSONL -> permission mirror and post store), and
* ``make_indexer(rt).run()``        (db reads, chunking, hash lookups, embedding, Chroma writes),

with the embedder, database and Chroma client created and warmed *before* the clock starts.
Inside the indexer run the embedder's ``encode``, the chunker, the db reads and the Chroma writes
are wrapped with timers (on the instances: no project code changes), which gives the breakdown.
Finally it reads back the chunk texts the indexer wrote (``collection.get``) and times the bare
``rt.embedder.encode`` on exactly those texts: once in a single call (the model's best case,
sorted by length over the whole set) and once in the indexer's own batches. Figures only:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata

from ingest.bulk import BulkLoader
from ingest.pipeline import make_indexer
from rag.runtime import Runtime
from rag.settings import Settings

GOAL_RATIO = 0.85
CHAT_TEAM = "devchat"
MEETING_TEAM = "meetings"


def log(msg: str = "") -> None:
    print(msg, flush=True)


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


# ---------------------------------------------------------------------------------------------
# the synthetic export
# ---------------------------------------------------------------------------------------------
@dataclass
class ExportStats:
    posts: int = 0  # roots + replies
    roots: int = 0
    threads: int = 0  # roots with replies
    channels: int = 0
    users: int = 0
    chars: int = 0


def username(speaker: str) -> str:
    """A Mattermost-valid username (lower case, [a-z0-9._-], 3-22 chars) for a speaker."""
    name = re.sub(r"[^a-z0-9._-]+", ".", speaker.lower()).strip("._-") or "user"
    return (name if len(name) >= 3 else f"{name}.user")[:22].rstrip("._-")


@dataclass
class _Channel:
    team: str
    name: str
    display_name: str
    type: str
    posts: list[dict] = field(default_factory=list)


def _thread(turns: Sequence[benchdata.Turn], used: set[tuple[str, int]]) -> dict:
    """One root post with its replies; create_at made unique per author (ids derive from it)."""

    def stamp(t: benchdata.Turn, floor: int) -> int:
        ts = max(t.ts_ms, floor)
        while (username(t.speaker), ts) in used:
            ts += 1
        used.add((username(t.speaker), ts))
        return ts

    root_ts = stamp(turns[0], 0)
    replies = []
    last = root_ts
    for t in turns[1:]:
        last = stamp(t, last + 1)
        replies.append({"user": username(t.speaker), "message": t.text, "create_at": last})
    post = {"user": username(turns[0].speaker), "message": turns[0].text, "create_at": root_ts}
    if replies:
        post["replies"] = replies
    return post


def build_export(path: Path, target_posts: int, channels: int, seed: int) -> ExportStats:
    """Write the JSONL export: ``channels`` channels with ~``target_posts / channels`` posts each.

    One channel per Gitter room (its dialogues as threads, in order); the other channels each
    take one meeting from a random start, as consecutive 6-14 turn slices."""
    rng = np.random.default_rng(seed)
    chat = benchdata.load_livechat()
    meetings = benchdata.load_qmsum()
    used: set[tuple[str, int]] = set()
    rooms = sorted({s.room for s in chat})[: max(1, channels // 2)]
    quota = max(1, target_posts // channels)
    out: list[_Channel] = []

    for r in rooms:
        ch = _Channel(CHAT_TEAM, r, f"{r.title()} help", "O")
        taken = 0
        for src in (s for s in chat if s.room == r):
            if taken >= quota:
                break
            turns = src.turns[: quota - taken] if taken + len(src.turns) > quota + 5 else src.turns
            ch.posts.append(_thread(turns, used))
            taken += len(turns)
        out.append(ch)

    n_meet = channels - len(rooms)
    for i, mi in enumerate(rng.choice(len(meetings), size=n_meet, replace=False)):
        turns = meetings[int(mi)].turns
        ch = _Channel(MEETING_TEAM, f"meetings-{i:02d}", f"Meeting notes {i:02d}",
                      "P" if i % 4 == 3 else "O")
        pos = int(rng.integers(0, max(1, len(turns) - quota)))
        taken = 0
        while taken < quota and pos < len(turns):
            width = min(int(rng.integers(6, 15)), quota - taken)
            part = turns[pos : pos + width]
            if rng.random() < 0.2:  # un-threaded posts: the chunker's window path
                ch.posts.extend(_thread([t], used) for t in part)
            else:
                ch.posts.append(_thread(part, used))
            taken += len(part)
            pos += width
        out.append(ch)

    # users: everyone who posts, member of the channels they post in
    member: dict[str, dict[str, set[str]]] = {}
    display: dict[str, str] = {}
    for ch in out:
        for p in ch.posts:
            for u in [p["user"], *(r["user"] for r in p.get("replies", []))]:
                member.setdefault(u, {}).setdefault(ch.team, set()).add(ch.name)
    for s in chat + meetings:
        for t in s.turns:
            display.setdefault(username(t.speaker), t.speaker)

    stats = ExportStats(channels=len(out), users=len(member))
    with path.open("w", encoding="utf-8") as fh:
        def line(obj: dict) -> None:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")

        line({"type": "version", "version": 1})
        for team, disp in ((CHAT_TEAM, "Developer chat"), (MEETING_TEAM, "Meetings")):
            line({"type": "team", "team": {"name": team, "display_name": disp, "type": "O"}})
        for ch in out:
            line({"type": "channel", "channel": {"team": ch.team, "name": ch.name,
                                                 "display_name": ch.display_name,
                                                 "type": ch.type}})
        for u, teams in sorted(member.items()):
            first, _, last = display.get(u, u).partition(" ")
            line({"type": "user", "user": {
                "username": u, "first_name": first, "last_name": last,
                "email": f"{u}@example.com",
                "teams": [{"name": t, "roles": "team_user",
                           "channels": [{"name": c, "roles": "channel_user"}
                                        for c in sorted(chans)]}
                          for t, chans in sorted(teams.items())],
            }})
        for ch in out:
            for p in ch.posts:
                line({"type": "post", "post": {"team": ch.team, "channel": ch.name, **p}})
                replies = p.get("replies", [])
                stats.roots += 1
                stats.threads += bool(replies)
                stats.posts += 1 + len(replies)
                stats.chars += len(p["message"]) + sum(len(r["message"]) for r in replies)
    return stats


# ---------------------------------------------------------------------------------------------
# timers attached to instances
# ---------------------------------------------------------------------------------------------
@dataclass
class Timer:
    seconds: float = 0.0
    calls: int = 0
    items: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wrap(self, fn: Callable[..., Any], count: Callable[..., int] | None = None,
             record: list | None = None) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t
                with self._lock:
                    self.seconds += dt
                    self.calls += 1
                    if count is not None:
                        self.items += count(*args, **kwargs)
                    if record is not None:
                        record.append(list(args[0]))

        return wrapped


@dataclass
class RunResult:
    """One timed pipeline run on a fresh home, plus the bare encodes of its chunk texts."""

    posts: int
    lines: int
    load_s: float
    index_s: float
    chunks: int
    channels: int
    threads: int
    load_errors: list[str]
    enc: Timer
    write: Timer
    chunk: Timer
    read: Timer
    hashes: Timer
    texts: list[str]
    batches: list[list[str]]
    load_cpu: float = math.nan  # process CPU seconds (all threads): less sensitive to other load
    index_cpu: float = math.nan
    bare_one_s: float = math.nan
    bare_batched_s: float = math.nan
    bare_one_cpu: float = math.nan

    @property
    def total_s(self) -> float:
        return self.load_s + self.index_s

    @property
    def ratio(self) -> float:
        return (self.chunks / self.total_s) / (self.chunks / self.bare_one_s)

    @property
    def cpu_ratio(self) -> float:
        return self.bare_one_cpu / (self.load_cpu + self.index_cpu)


def run_pipeline(home: Path, export: Path, embedder: Any) -> RunResult:
    """BulkLoader.load then make_indexer(rt).run() on a fresh home, with timers attached."""
    rt = Runtime(Settings(home=home, database_url=None, chroma_url=None))
    rt.embedder = embedder  # the shared, warmed embedder (cached_property: plain attribute)
    _ = rt.db, rt.index  # created before the clock
    enc, write, chunk, read, hashes = (Timer() for _ in range(5))
    batches: list[list[str]] = []
    bare_encode = embedder.encode
    embedder.encode = enc.wrap(bare_encode, lambda texts: len(texts), batches)
    index = rt.index
    index.upsert = write.wrap(index.upsert, lambda ids, *a, **k: len(ids))
    index.delete = write.wrap(index.delete)
    index.channel_hashes = hashes.wrap(index.channel_hashes)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        load = BulkLoader(rt.db).load(export)
        c1, t1 = time.process_time(), time.perf_counter()
        indexer = make_indexer(rt)
        indexer.chunker.chunk_channel = chunk.wrap(indexer.chunker.chunk_channel)
        indexer._load = read.wrap(indexer._load)
        report = indexer.run()
        c2, t2 = time.process_time(), time.perf_counter()
    finally:
        del embedder.encode  # back to the class method
    texts = [d or "" for d in rt.index.collection.get(include=["documents"])["documents"]]
    rt.close()
    return RunResult(load.posts_new, load.lines, t1 - t0, t2 - t1, len(texts), report.channels,
                     report.threads, load.errors, enc, write, chunk, read, hashes, texts, batches,
                     load_cpu=c1 - c0, index_cpu=c2 - c1)


def time_bare(embedder: Any, texts: list[str],
              batches: list[list[str]]) -> tuple[float, float, float]:
    """Bare encode of ``texts``: wall seconds in one call, wall seconds in the indexer's
    batches, and process CPU seconds of the one call."""
    c, t = time.process_time(), time.perf_counter()
    embedder.encode(texts)
    one, one_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    for b in batches:
        embedder.encode(b)
    return one, time.perf_counter() - t, one_cpu


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~600 posts instead of ~3,000")
    ap.add_argument("--posts", type=int, default=None,
                    help="posts to generate (roots + replies); None: 3,000 (600 with --quick)")
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="pipeline runs (each on a fresh home); the bare encode is timed after "
                    "odd rounds and before even ones, and the median round is reported")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", type=Path, default=None,
                    help="work in this directory and keep it; None: a temp dir, deleted")
    args = ap.parse_args(argv)
    target = args.posts or (600 if args.quick else 3000)
    t_main = time.perf_counter()
    log(f"ingest_bench: ~{target:,} posts over ~{args.channels} channels, {args.rounds} rounds; "
        f"load average {loadavg()} on {os.cpu_count()} CPUs")

    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="openops-ingest-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export = work / "import.jsonl"
        stats = build_export(export, target, args.channels, args.seed)
        log(f"  export: {stats.posts:,} posts ({stats.roots:,} roots, {stats.threads:,} with "
            f"replies), {stats.channels} channels, {stats.users} users, "
            f"{stats.chars / max(1, stats.posts):.0f} chars/post, "
            f"{export.stat().st_size / 1e6:.1f} MB")

        t = time.perf_counter()
        from rag.embeddings import Embedder

        s = Settings(home=work / "unused")
        embedder = Embedder(s.embedding_model, dtype=s.embedding_dtype,
                            batch_size=s.embedding_batch_size)
        embedder.encode(["warm-up: the v2.4 release moves to Thursday."])
        log(f"  embedder (not timed): bf16={embedder.bf16}, batch {embedder.batch_size}, "
            f"{time.perf_counter() - t:.1f}s")

        for r in range(args.rounds):
            bare_first = r % 2 == 1  # the texts are the same every round: known from round 1
            if bare_first:
                bare = time_bare(embedder, runs[-1].texts, runs[-1].batches)
            run = run_pipeline(work / f"home{r}", export, embedder)
            if not bare_first:
                bare = time_bare(embedder, run.texts, run.batches)
            run.bare_one_s, run.bare_batched_s, run.bare_one_cpu = bare
            runs.append(run)
            log(f"  round {r + 1} (bare {'before' if bare_first else 'after'}): load "
                f"{run.load_s:.2f}s + index {run.index_s:.2f}s = {run.total_s:.2f}s; bare "
                f"{run.bare_one_s:.2f}s; ratio {run.ratio:.2f} (CPU seconds: pipeline "
                f"{run.load_cpu + run.index_cpu:.1f}, bare {run.bare_one_cpu:.1f}, ratio "
                f"{run.cpu_ratio:.2f}); load average {loadavg()}")

    run = sorted(runs, key=lambda x: x.ratio)[len(runs) // 2]
    report(run, runs, [embedder.count_tokens(t) for t in run.texts])
    log(f"wall time {time.perf_counter() - t_main:.0f}s")
    return 0


def report(run: RunResult, runs: list[RunResult], tokens: list[int]) -> None:
    total_s = run.total_s
    n = run.chunks
    bare_cps = n / run.bare_one_s
    other = run.index_s - (run.read.seconds + run.chunk.seconds + run.hashes.seconds
                           + run.enc.seconds)

    def row(label: str, secs: float, note: str = "") -> str:
        return f"  {label:<36} {secs:8.2f} s {100 * secs / total_s:6.1f}%  {note}"

    log()
    log(f"RESULTS  median of {len(runs)} rounds (ratios {', '.join(f'{r.ratio:.2f}' for r in runs)})"
        f": {run.posts:,} posts -> {n:,} chunks ({run.channels} channels, {run.threads:,} "
        f"threads, {np.mean(tokens):.0f} tokens/chunk mean, {np.percentile(tokens, 95):.0f} p95), "
        f"load average {loadavg()}")
    if run.load_errors:
        log(f"  load errors: {len(run.load_errors)}, first: {run.load_errors[0]}")
    log(f"  end to end (load + index)            {total_s:8.2f} s   "
        f"{run.posts / total_s:7.1f} posts/s   {n / total_s:7.1f} chunks/s")
    log(f"  bare encode, one call on those texts {run.bare_one_s:8.2f} s   "
        f"{'':>7}          {bare_cps:7.1f} chunks/s")
    log(f"  bare encode, the indexer's batches   {run.bare_batched_s:8.2f} s   "
        f"{'':>7}          {n / run.bare_batched_s:7.1f} chunks/s  "
        f"({len(run.batches)} calls, {n / max(1, len(run.batches)):.0f} texts each)")
    log(f"  ratio end-to-end / bare: {run.ratio:.2f}  (goal >= {GOAL_RATIO}: "
        f"{'ok' if run.ratio >= GOAL_RATIO else 'MISS'}); index phase only / bare: "
        f"{run.bare_one_s / run.index_s:.2f}")
    cpu = [r.cpu_ratio for r in runs]
    log(f"  the same ratio in process CPU seconds (robust to other load): median "
        f"{float(np.median(cpu)):.2f} (rounds {', '.join(f'{x:.2f}' for x in cpu)}); "
        f"this round: load {run.load_cpu:.1f} + index {run.index_cpu:.1f} CPU-s vs bare "
        f"{run.bare_one_cpu:.1f} CPU-s")
    log("where the end-to-end time goes (share of load + index):")
    log(row("load: BulkLoader.load", run.load_s,
            f"{run.lines:,} lines, {run.posts / run.load_s:.0f} posts/s"))
    log(row("index: db reads (Indexer._load)", run.read.seconds, f"{run.read.calls} channels"))
    log(row("index: chunking (chunk_channel)", run.chunk.seconds,
            f"{n / max(1e-9, run.chunk.seconds):.0f} chunks/s"))
    log(row("index: existing-hash lookups", run.hashes.seconds, f"{run.hashes.calls} calls"))
    log(row("index: embedding (encode)", run.enc.seconds,
            f"{run.enc.items:,} texts in {run.enc.calls} calls, "
            f"{run.enc.items / max(1e-9, run.enc.seconds):.0f}/s; the same batches bare: "
            f"{run.bare_batched_s:.2f} s"))
    log(row("index: other (queue waits, commits)", other,
            "main thread blocked on the writer, db updates, bookkeeping"))
    log(row("  writer thread: Chroma upserts", run.write.seconds,
            f"{run.write.items:,} rows in {run.write.calls} calls, overlapping embedding"))
    slow = run.enc.seconds - run.bare_batched_s
    log(f"  embedding inside the run took {slow:+.2f} s ({slow / run.bare_batched_s:+.0%}) vs the "
        f"same batches bare: the cost of what runs beside it (the writer thread's Chroma calls)")


if __name__ == "__main__":
    raise SystemExit(main())
