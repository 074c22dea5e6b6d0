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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~600 posts instead of ~3,000")
    ap.add_argument("--posts", type=int, default=None, help="posts to generate (roots + replies)")
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", type=Path, default=None,
                    help="work in this directory and keep it (default: a deleted temp dir)")
    args = ap.parse_args(argv)
    target = args.posts or (600 if args.quick else 3000)
    t_main = time.perf_counter()
    log(f"ingest_bench: ~{target:,} posts over ~{args.channels} channels; "
        f"load average {loadavg()} on {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(prefix="openops-ingest-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export = work / "import.jsonl"
        stats = build_export(export, target, args.channels, args.seed)
        log(f"  export: {stats.posts:,} posts ({stats.roots:,} roots, {stats.threads:,} with "
            f"replies), {stats.channels} channels, {stats.users} users, "
            f"{stats.chars / max(1, stats.posts):.0f} chars/post, "
            f"{export.stat().st_size / 1e6:.1f} MB")

        # everything expensive to create, before the clock
        t = time.perf_counter()
        rt = Runtime(Settings(home=work / "home", database_url=None, chroma_url=None))
        embedder = rt.embedder
        embedder.encode(["warm-up: the v2.4 release moves to Thursday."])
        _ = rt.db, rt.index
        log(f"  setup (not timed): runtime, embedder (bf16={embedder.bf16}, "
            f"batch {embedder.batch_size}), db, Chroma {time.perf_counter() - t:.1f}s")

        # instrument the instances the indexer will use
        enc_timer, write_timer, chunk_timer, read_timer, hash_timer = (Timer() for _ in range(5))
        batches: list[list[str]] = []
        bare_encode = embedder.encode
        embedder.encode = enc_timer.wrap(bare_encode, lambda texts: len(texts), batches)
        index = rt.index
        index.upsert = write_timer.wrap(index.upsert, lambda ids, *a, **k: len(ids))
        index.delete = write_timer.wrap(index.delete)
        index.channel_hashes = hash_timer.wrap(index.channel_hashes)

        t0 = time.perf_counter()
        load_report = BulkLoader(rt.db).load(export)
        t1 = time.perf_counter()
        indexer = make_indexer(rt)
        indexer.chunker.chunk_channel = chunk_timer.wrap(indexer.chunker.chunk_channel)
        indexer._load = read_timer.wrap(indexer._load)
        index_report = indexer.run()
        t2 = time.perf_counter()
        embedder.encode = bare_encode

        if load_report.errors:
            log(f"  load errors: {len(load_report.errors)}, first: {load_report.errors[0]}")
        texts = [d or "" for d in rt.index.collection.get(include=["documents"])["documents"]]
        n_chunks = len(texts)
        tokens = [embedder.count_tokens(x) for x in texts]

        tb = time.perf_counter()
        bare_encode(texts)
        bare_one = time.perf_counter() - tb
        tb = time.perf_counter()
        for b in batches:
            bare_encode(b)
        bare_batched = time.perf_counter() - tb
        rt.close()

    load_s, index_s = t1 - t0, t2 - t1
    total_s = t2 - t0
    posts = load_report.posts_new
    e2e_cps = n_chunks / total_s
    bare_cps = n_chunks / bare_one
    other = index_s - (read_timer.seconds + chunk_timer.seconds + hash_timer.seconds
                       + enc_timer.seconds)

    def row(label: str, secs: float, note: str = "") -> str:
        return f"  {label:<36} {secs:8.2f} s {100 * secs / total_s:6.1f}%  {note}"

    log()
    log(f"RESULTS  {posts:,} posts -> {n_chunks:,} chunks ({index_report.channels} channels, "
        f"{index_report.threads:,} threads, {np.mean(tokens):.0f} tokens/chunk mean, "
        f"{int(np.percentile(tokens, 95))} p95), load average {loadavg()}")
    log(f"  end to end (load + index)            {total_s:8.2f} s   "
        f"{posts / total_s:7.1f} posts/s   {e2e_cps:7.1f} chunks/s")
    log(f"  bare encode, one call on those texts {bare_one:8.2f} s   "
        f"{'':>7}          {bare_cps:7.1f} chunks/s")
    log(f"  bare encode, the indexer's batches   {bare_batched:8.2f} s   "
        f"{'':>7}          {n_chunks / bare_batched:7.1f} chunks/s  "
        f"({len(batches)} calls, {n_chunks / max(1, len(batches)):.0f} texts each)")
    ratio = e2e_cps / bare_cps
    log(f"  ratio end-to-end / bare: {ratio:.2f}  (goal >= {GOAL_RATIO}: "
        f"{'ok' if ratio >= GOAL_RATIO else 'MISS'}); index phase only / bare: "
        f"{(n_chunks / index_s) / bare_cps:.2f}; "
        f"vs the indexer's batches: {(n_chunks / total_s) / (n_chunks / bare_batched):.2f}")
    log("where the end-to-end time goes (share of load + index):")
    log(row("load: BulkLoader.load", load_s,
            f"{load_report.lines:,} lines, {posts / load_s:.0f} posts/s"))
    log(row("index: db reads (Indexer._load)", read_timer.seconds, f"{read_timer.calls} channels"))
    log(row("index: chunking (chunk_channel)", chunk_timer.seconds,
            f"{n_chunks / max(1e-9, chunk_timer.seconds):.0f} chunks/s"))
    log(row("index: existing-hash lookups", hash_timer.seconds, f"{hash_timer.calls} calls"))
    log(row("index: embedding (encode)", enc_timer.seconds,
            f"{enc_timer.items:,} texts in {enc_timer.calls} calls, "
            f"{enc_timer.items / max(1e-9, enc_timer.seconds):.0f}/s"))
    log(row("index: other (queue waits, commits)", other,
            "main thread blocked on the writer, db updates, bookkeeping"))
    log(row("  writer thread: Chroma upserts", write_timer.seconds,
            f"{write_timer.items:,} rows in {write_timer.calls} calls, "
            "overlaps embedding (2 cores shared)"))
    log(f"wall time {time.perf_counter() - t_main:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
