"""Personalised vs generic extractive meeting summaries on QMSum: does "for you" follow the reader?

Usage::

    .venv/bin/python bench/personal_bench.py                 # 20 meetings spread over the domains
    .venv/bin/python bench/personal_bench.py --meetings 0    # all 162 training meetings
    .venv/bin/python bench/personal_bench.py --mix 1,0,0.75 --mix 0.9,0.1,0.6   # other mixes too

Each QMSum meeting topic (``topic_list``: a short name such as "Best way to store features", with
the ``relevant_text_span`` turn ranges where the meeting discusses it) stands in for a reader who
cares about that topic. The reader's interest vector is what a reader could plausibly have: the
topic's *name* embedded by OpenOps' ``Embedder`` (never the span's text, which would be circular),
used as is ("raw") and centred the way ``rag/profile.py`` centres a profile ("centred": minus
``CENTRING`` (0.8) times the normalised mean of the meeting's sentence embeddings, renormalised).

The meeting goes to ``Extractive.summarize`` as the summary service feeds a transcript: one source
per turn, ``[HH:MM:SS] Speaker: text`` (QMSum has no times: a turn every 20 s), so a sentence's
``source`` is its turn index. A "for you" item is *from the span* when that index lies in one of
the topic's (inclusive) ranges. Compared with the generic summary (``interest=None``, no "for you"):
its first N items as shown (key points, then decisions, action items, open questions; N = the
number of "for you" items), and for reference the top N sentences by LexRank (centrality rank
order) and the span's share of all the meeting's sentences (what a random pick gets).

Time: per meeting, one generic summary with the real embedder (cold: it embeds every sentence);
then, with those embeddings cached (the two paths embed exactly the same sentences in the same
call, so the cache takes only the common part out), generic and personalised summaries
alternately (``--rounds`` each); the personalised one's extra time is the difference of the
medians. Reported as median and p95 over meetings, in ms and as a share of the cold generic
summary.

``--mix REL,CENT,LAMBDA[,CONTEXT]`` (repeatable) re-ranks "for you" in the bench, not in
``rag/``: the same steps as ``Extractive.summarize`` (de-duplicated sentences, LexRank,
``REL * unit(closeness) + CENT * unit(centrality)``, MMR with ``LAMBDA``) with other weights;
``CONTEXT`` (default 0) averages each sentence's closeness with that of its ``CONTEXT``
neighbours on each side, in meeting order; ``LEX`` (default 0) adds ``LEX`` times the BM25 score
(``rag.lexical``) of the topic's words to the closeness before it is scaled. The replica with
the shipped weights (0.75, 0.25, 0.75, 0, 0) is checked to pick exactly the sentences
``summarize`` picks. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdata

from rag.embeddings import Embedder
from rag.extractive import CLOSENESS, MIN_WORDS, Extractive, _dedupe, _unit, lexrank, mmr_scores
from rag.lexical import bm25, query_columns, term_matrix
from rag.profile import CENTRING
from rag.summaries import MEETING_CONTEXT

GOAL_SHARE = 0.6
GOAL_RATIO = 2.0
# rag/extractive.py and rag/summaries.py for a meeting: relevance, centrality, MMR lambda,
# context sentences each side, BM25 weight of the interest's words
SHIPPED_MIX = (CLOSENESS, round(1 - CLOSENESS, 2), 0.75, MEETING_CONTEXT, 1.0)
SECONDS_PER_TURN = 20
GENERIC_ORDER = ("key_points", "decisions", "action_items", "open_questions")


def log(msg: str = "") -> None:
    print(msg, flush=True)


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else math.nan


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
@dataclass
class Topic:
    name: str
    spans: list[tuple[int, int]]  # inclusive turn ranges

    def covers(self, turn: int) -> bool:
        return any(a <= turn <= b for a, b in self.spans)


@dataclass
class Meeting:
    name: str
    domain: str
    texts: list[str]  # one per original turn ("" for a turn left without words)
    topics: list[Topic]


def domain_of(stem: str) -> str:
    if stem.startswith(("ES", "IS", "TS")):
        return "AMI"
    if stem.startswith("B"):
        return "ICSI"
    return "Committee"


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def load_meetings(folder: Path, limit: int) -> list[Meeting]:
    """The meetings (evenly spaced over the sorted files, so every domain is in a subset), each
    turn kept at its own index so that ``relevant_text_span`` indexes ``texts``."""
    files = sorted(folder.glob("*.json"))
    if limit and limit < len(files):
        files = [files[int(i * len(files) / limit)] for i in range(limit)]
    out = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        texts = []
        for i, t in enumerate(data.get("meeting_transcripts") or []):
            text = benchdata.clean_meeting_turn(str(t.get("content") or ""))
            # cut to 60 characters: rag/extractive.py's TRANSCRIPT reads a speaker of at most
            # 60 (rag/summaries.py's TURN: 80); a few Committee speakers run to 94, whose turns
            # would otherwise be read as one sentence starting "[00:12:20] Name ...:"
            speaker = str(t.get("speaker") or "Speaker").replace(":", " ").strip()[:60]
            texts.append(f"[{clock(i * SECONDS_PER_TURN)}] {speaker}: {text}" if text else "")
        topics = []
        for t in data.get("topic_list") or []:
            spans = []
            for span in t.get("relevant_text_span") or []:
                try:
                    a, b = int(span[0]), int(span[1])
                except (ValueError, TypeError, IndexError):
                    continue
                spans.append((min(a, b), max(a, b)))
            if spans and str(t.get("topic") or "").strip():
                topics.append(Topic(str(t["topic"]).strip(), spans))
        if topics and any(texts):
            out.append(Meeting(path.stem, domain_of(path.stem), texts, topics))
    return out


# ---------------------------------------------------------------------------------------------
# the embedder, cached (the summaries of one meeting embed the same sentences every time)
# ---------------------------------------------------------------------------------------------
class CachedEmbedder:
    def __init__(self, real: Embedder):
        self.real = real
        self.dimension = real.dimension
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for t, v in zip(missing, self.real.encode(missing)):
                self.cache[t] = v
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])

    def clear(self) -> None:
        self.cache.clear()


# ---------------------------------------------------------------------------------------------
# the "for you" ranking, replicated with other weights
# ---------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    sents: list  # de-duplicated Sentences, as summarize ranks them
    emb: np.ndarray
    cent: np.ndarray  # LexRank scaled by its max
    terms: object = None  # sentences x hashed terms (for the BM25 variant)
    lengths: np.ndarray | None = None


def prepare(ex: Extractive, texts: list[str]) -> Prepared:
    sents = ex.sentences(texts)
    emb = ex.embedder.encode([s.text for s in sents])
    sents, emb = _dedupe(sents, emb)
    scores = lexrank(emb)  # no names to boost: a QMSum reader has none
    terms = term_matrix([s.text for s in sents])
    return Prepared(sents, emb, scores / (scores.max() or 1.0), terms,
                    np.asarray(terms.sum(axis=1), dtype=np.float32).ravel())


def for_you(p: Prepared, interest: np.ndarray, words: str, mix: tuple, n: int) -> list:
    rel_w, cent_w, lam, context, lex_w = mix
    rel = _unit(p.emb @ interest)
    if lex_w:  # plus BM25 of the interest's words over the meeting's sentences (IDF among them)
        rel = _unit(rel + lex_w * _unit(bm25(p.terms, p.lengths, query_columns(words))))
    if context:  # a sentence's closeness averaged with its neighbours' (2 * context + 1 of them)
        k = np.ones(2 * int(context) + 1)
        rel = _unit(np.convolve(rel, k, "same") / np.convolve(np.ones_like(rel), k, "same"))
    short = np.array([len(s.text.split()) < MIN_WORDS for s in p.sents], dtype=float)
    score = rel_w * rel + cent_w * _unit(p.cent) - 2.0 * short  # as summarize: short ones last
    return sorted((p.sents[i] for i in mmr_scores(score, p.emb, n, lam)), key=lambda s: s.order)


def top_central(p: Prepared, n: int) -> list:
    return [p.sents[i] for i in np.argsort(-p.cent)[:n]]


# ---------------------------------------------------------------------------------------------
# tallies
# ---------------------------------------------------------------------------------------------
@dataclass
class Tally:
    hits: int = 0
    items: int = 0
    topics: int = 0
    topics_at_goal: int = 0
    by_domain: dict = field(default_factory=dict)

    def add(self, topic: Topic, picked: list, domain: str) -> None:
        h = sum(topic.covers(s.source) for s in picked)
        self.hits += h
        self.items += len(picked)
        self.topics += 1
        if picked and h / len(picked) >= GOAL_SHARE:
            self.topics_at_goal += 1
        d = self.by_domain.setdefault(domain, [0, 0])
        d[0] += h
        d[1] += len(picked)

    @property
    def share(self) -> float:
        return self.hits / self.items if self.items else math.nan

    def domain_share(self, domain: str) -> float:
        h, n = self.by_domain.get(domain, (0, 0))
        return h / n if n else math.nan


class Ticker:
    """Progress: a rich bar on a terminal, a line per meeting in a log file."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.t0 = time.perf_counter()
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
                                      MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                                      TimeElapsedColumn(), TimeRemainingColumn())
            self._progress.start()
            self._task = self._progress.add_task(label, total=total, note="")

    def advance(self, note: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, note=note)
        else:
            log(f"  {self.label} {self.done}/{self.total}: {note} "
                f"[{time.perf_counter() - self.t0:.0f}s, load {loadavg()}]")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def parse_mix(text: str) -> tuple:
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    parts += [0.0] * (5 - len(parts)) if 3 <= len(parts) <= 5 else []
    if (len(parts) != 5 or not 0 <= parts[2] <= 1 or parts[3] < 0
            or parts[3] != int(parts[3])):
        raise argparse.ArgumentTypeError(
            "--mix REL,CENT,LAMBDA[,CONTEXT[,LEX]] (LAMBDA in [0, 1], CONTEXT a whole number "
            "of neighbouring sentences each side, LEX the BM25 weight), e.g. 1,0,0.75 or "
            "0.75,0.25,0.75,3 or 0.5,0.25,0.75,0,0.5")
    return parts[0], parts[1], parts[2], int(parts[3]), parts[4]


def mix_name(mix: tuple) -> str:
    return (f"rel {mix[0]:g} / cent {mix[1]:g} / lambda {mix[2]:g}"
            + (f" / context {mix[3]}" if mix[3] else "") + (f" / BM25 {mix[4]:g}" if mix[4] else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path,
                    default=benchdata.DATASETS / "qmsum-train" / "data" / "train")
    ap.add_argument("--meetings", type=int, default=20,
                    help="meetings, evenly spaced over the sorted files (0: all 162)")
    ap.add_argument("--for-you", type=int, default=5, help="'for you' items (n_for_you)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="warm generic and personalised summaries timed per meeting, each")
    ap.add_argument("--mix", type=parse_mix, action="append", default=[],
                    metavar="REL,CENT,LAMBDA[,CONTEXT[,LEX]]",
                    help="also rank 'for you' with these weights, in the bench (repeatable)")
    args = ap.parse_args(argv)

    meetings = load_meetings(args.data, args.meetings)
    n = args.for_you
    topics = sum(len(m.topics) for m in meetings)
    t_main = time.perf_counter()
    mix_of = ", ".join(f"{d} {sum(m.domain == d for m in meetings)}"
                       for d in ("AMI", "ICSI", "Committee"))
    log(f"personal_bench: {len(meetings)} QMSum meetings ({mix_of}), "
        f"{topics} topics as readers, {n} 'for you' items; load average {loadavg()} on "
        f"{os.cpu_count()} CPUs")
    real = Embedder()
    real.encode(["warm up the model before any clock starts"] * 8)
    cached = CachedEmbedder(real)
    ex = Extractive(cached)
    log(f"  embedder {real.name} bf16={real.bf16}; CENTRING={CENTRING}")

    variants = ("raw", "centred")
    mixes = [SHIPPED_MIX] + [m for m in dict.fromkeys(args.mix) if m != SHIPPED_MIX]
    pers = {v: Tally() for v in variants}
    generic, central, base = Tally(), Tally(), Tally()
    alt = {(m, v): Tally() for m in mixes for v in variants}
    replica_same = replica_total = 0
    span_turns: list[float] = []
    cold_gen, warm_gen, warm_pers = [], [], []  # seconds, one per meeting
    cpu_gen, cpu_pers = [], []  # process CPU seconds (all threads) of the warm summaries
    ticker = Ticker("meetings", len(meetings))
    try:
        for m in meetings:
            cached.clear()
            t = time.perf_counter()
            gen = ex.summarize(m.texts)  # cold: embeds every sentence
            cold_gen.append(time.perf_counter() - t)
            shown = [s for key in GENERIC_ORDER for s in gen[key]][:n]
            prep = prepare(ex, m.texts)
            centre = prep.emb.mean(axis=0)
            centre /= float(np.linalg.norm(centre)) or 1.0
            q = real.encode([t.name for t in m.topics])
            interests = {"raw": q}
            c = q - CENTRING * centre
            interests["centred"] = c / np.linalg.norm(c, axis=1, keepdims=True)
            all_sents = ex.sentences(m.texts)
            central_n = top_central(prep, n)
            for ti, topic in enumerate(m.topics):
                generic.add(topic, shown, m.domain)
                central.add(topic, central_n, m.domain)
                base.add(topic, all_sents, m.domain)
                span_turns.append(sum(b - a + 1 for a, b in topic.spans) / len(m.texts))
                for v in variants:
                    # as the service calls it for a meeting: the interest's words, one
                    # sentence of context each side
                    res = ex.summarize(m.texts, interest=interests[v][ti], n_for_you=n,
                                       words=topic.name, context=MEETING_CONTEXT)
                    pers[v].add(topic, res["for_you"], m.domain)
                    for mix in mixes:
                        picked = for_you(prep, interests[v][ti], topic.name, mix, n)
                        alt[(mix, v)].add(topic, picked, m.domain)
                        if mix == SHIPPED_MIX:
                            replica_total += 1
                            replica_same += ([s.order for s in picked]
                                             == [s.order for s in res["for_you"]])
            # warm timing: same embeddings (cached) in both paths, alternated
            # (which goes first alternates, so neither always runs right after the other)
            g, p_, gc, pc = [], [], [], []
            v0 = interests["centred"][0]
            for r in range(args.rounds):
                for personal in ((False, True) if r % 2 == 0 else (True, False)):
                    t, c0 = time.perf_counter(), time.process_time()
                    if personal:
                        ex.summarize(m.texts, interest=v0, n_for_you=n,
                                     words=m.topics[0].name, context=MEETING_CONTEXT)
                    else:
                        ex.summarize(m.texts)
                    wall, cpu = time.perf_counter() - t, time.process_time() - c0
                    (p_ if personal else g).append(wall)
                    (pc if personal else gc).append(cpu)
            warm_gen.append(statistics.median(g))
            warm_pers.append(statistics.median(p_))
            cpu_gen.append(statistics.median(gc))
            cpu_pers.append(statistics.median(pc))
            ticker.advance(f"{m.name}: {len(prep.sents)} sentences, cold {cold_gen[-1]:.1f}s; "
                           f"centred share so far {pers['centred'].share:.2f}")
    finally:
        ticker.close()

    log()
    log(f"RESULTS  {len(meetings)} meetings, {topics} topics, {n} 'for you' items each; "
        f"spans cover {np.mean(span_turns):.0%} of a meeting's turns on average; "
        f"load average {loadavg()}")
    log(f"goals: personalised share >= {GOAL_SHARE:g} and >= {GOAL_RATIO:g}x the generic "
        f"summary's first {n} items")
    domains = [d for d in ("AMI", "ICSI", "Committee") if d in generic.by_domain]
    header = (f"{'selection':<62} {'share':>6} {'x gen':>6} {'>=0.6':>6}  "
              + " ".join(f"{d:>9}" for d in domains))
    log(header)
    log("-" * len(header))

    def row(name: str, t: Tally, ratio: bool = True) -> None:
        x = f"{t.share / generic.share:.2f}" if ratio and generic.share else "-"
        at = f"{t.topics_at_goal / t.topics:.0%}" if t.topics else "-"
        log(f"{name:<62} {t.share:>6.3f} {x:>6} {at:>6}  "
            + " ".join(f"{t.domain_share(d):>9.3f}" for d in domains))

    row("random sentence (span's share of sentences)", base, ratio=False)
    row(f"generic: first {n} items shown", generic)
    row(f"generic: top {n} by LexRank", central)
    for v in variants:
        row(f"personalised, {v} topic vector", pers[v])
    for v in variants:
        share, ratio = pers[v].share, pers[v].share / generic.share if generic.share else math.nan
        ok = (share >= GOAL_SHARE, ratio >= GOAL_RATIO)
        log(f"goal ({v}): share {share:.3f} {'>=' if ok[0] else '<'} {GOAL_SHARE:g} "
            f"{'met' if ok[0] else 'MISSED'}; ratio {ratio:.2f}x {'>=' if ok[1] else '<'} "
            f"{GOAL_RATIO:g}x {'met' if ok[1] else 'MISSED'}")
    log(f"replica of 'for you' with the shipped mix ({mix_name(SHIPPED_MIX)}): same sentences "
        f"as summarize for {replica_same}/{replica_total} readers")
    if len(mixes) > 1:
        log()
        log("'for you' re-ranked in the bench with other weights (rag/ unchanged):")
        log(header)
        log("-" * len(header))
        for mix in mixes:
            for v in variants:
                row(f"{mix_name(mix)}, {v}", alt[(mix, v)])

    added = [p_ - g for p_, g in zip(warm_pers, warm_gen)]
    share_added = [a / c for a, c in zip(added, cold_gen)]
    log()
    log(f"time per meeting (median / p95 over {len(meetings)} meetings; warm = sentence "
        f"embeddings cached, median of {args.rounds}):")
    log(f"  generic summary, cold       {pct(cold_gen, 50) * 1000:8.1f} / "
        f"{pct(cold_gen, 95) * 1000:8.1f} ms")
    log(f"  generic summary, warm       {pct(warm_gen, 50) * 1000:8.1f} / "
        f"{pct(warm_gen, 95) * 1000:8.1f} ms")
    log(f"  personalised summary, warm  {pct(warm_pers, 50) * 1000:8.1f} / "
        f"{pct(warm_pers, 95) * 1000:8.1f} ms")
    log(f"  added by personalisation    {pct(added, 50) * 1000:8.1f} / "
        f"{pct(added, 95) * 1000:8.1f} ms  = {pct(share_added, 50):.1%} / "
        f"{pct(share_added, 95):.1%} of the cold generic summary")
    cpu_added = [p_ - g for p_, g in zip(cpu_pers, cpu_gen)]
    log(f"  added, in process CPU time  {pct(cpu_added, 50) * 1000:8.1f} / "
        f"{pct(cpu_added, 95) * 1000:8.1f} ms  (warm generic {pct(cpu_gen, 50) * 1000:.1f} ms "
        "CPU median)")
    log(f"done in {time.perf_counter() - t_main:.0f}s; load average {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
