"""The extractive mode: answers and summaries made only of sentences from the sources.

No language model and no network. Answers pick the sentences most similar to the question
(sentence embeddings), diversified with maximal marginal relevance, de-duplicated, and put back
in source order with the citation of the source each came from. Summaries rank sentences with
LexRank (PageRank over the cosine-similarity graph of sentence embeddings) and sort them into
key points, decisions, action items and open questions by cue phrases."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lexical import bm25_small

LINE = re.compile(
    r"^(?P<author>.+?) \(@(?P<username>[\w.\-]+)\) (?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d): (?P<text>.*)$"
)
TRANSCRIPT = re.compile(r"^\[(?P<ts>\d\d:\d\d:\d\d)\] (?P<author>[^:]{1,80}): (?P<text>.*)$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[*]?[A-Z0-9@#])")
MD_NOISE = re.compile(r"(\*\*|__|`|^#+\s*|^[-*+]\s+|^\d+\.\s+)")
URL = re.compile(r"https?://\S+")

DECISION = re.compile(
    r"\b(decision|decided|we(?:'ll| will) go with|let's go with|agreed|approved|going with|"
    r"final call|we're going|ship it|sign(?:ed)? off)\b", re.I)
ACTION = re.compile(
    r"\b(action item|todo|to-do|i'll|i will|will (?:do|take|send|write|prepare|update|fix|own|"
    r"follow up|ping|draft|review|check)|can you|please|owner|assigned|by (?:mon|tue|wed|thu|fri|"
    r"eod|end of|tomorrow|next week)\w*|due)\b", re.I)


# a personalised "For you": how much closeness to the reader weighs against centrality, and
# the fewest words a sentence needs to be ranked among the others. Chosen on the sample's
# meeting and feed for two pairs of readers (tests/integration/test_sample_workspace.py):
# 0.75 without the floor put filler ("Thanks everyone, see you next Thursday.") first.
CLOSENESS = 0.9
MIN_WORDS = 8


@dataclass
class Sentence:
    text: str  # the sentence, markdown noise removed
    source: int  # index of the source it came from (0-based)
    order: int  # position in the concatenated sources
    author: str = ""


def split_source(text: str, source: int, start: int = 0) -> list[Sentence]:
    """Sentences of one chunk, skipping its header lines, keeping each line's author."""
    out: list[Sentence] = []
    author = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("Channel ~", "Direct message ", "Group message ")) or (
            line.startswith(("File ", "Transcript ")) and ", shared by " in line
        ):
            continue
        m = LINE.match(line) or TRANSCRIPT.match(line)
        if m:
            author, line = m.group("author").strip(), m.group("text")
        for part in SENTENCE_END.split(line):
            clean = MD_NOISE.sub("", URL.sub("", part)).strip(" -*|")
            clean = re.sub(r"\s+", " ", clean)
            if len(clean) < 20 or len(clean.split()) < 5:
                continue
            out.append(Sentence(clean, source, start + len(out), author))
    return out


def _dedupe(sentences: list[Sentence], emb: np.ndarray, threshold: float = 0.92):
    keep: list[int] = []
    seen: set[str] = set()
    for i, s in enumerate(sentences):
        key = s.text.lower()
        if key in seen:
            continue
        if keep and float(np.max(emb[keep] @ emb[i])) >= threshold:
            continue
        seen.add(key)
        keep.append(i)
    return [sentences[i] for i in keep], emb[keep]


def mmr(query: np.ndarray, emb: np.ndarray, n: int, lam: float = 0.7) -> list[int]:
    """Maximal marginal relevance: relevant to the query, different from what is chosen."""
    if len(emb) == 0:
        return []
    return mmr_scores(emb @ query, emb, n, lam)


def lexrank(emb: np.ndarray, threshold: float = 0.1, damping: float = 0.85,
            iterations: int = 100) -> np.ndarray:
    """LexRank centrality over the cosine graph of (normalised) sentence embeddings."""
    n = len(emb)
    if n == 0:
        return np.zeros(0)
    sim = emb @ emb.T
    adj = np.where(sim > threshold, sim, 0.0)
    np.fill_diagonal(adj, 0.0)
    rows = adj.sum(axis=1, keepdims=True)
    rows[rows == 0] = 1.0
    trans = adj / rows
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        new = (1 - damping) / n + damping * trans.T @ scores
        if np.abs(new - scores).sum() < 1e-8:
            break
        scores = new
    return scores


class Extractive:
    """Answers and summaries from source sentences only; needs just the embedder."""

    name = "extractive"
    notice = "Extractive answer (no language model): the most relevant sentences of the sources."

    def __init__(self, embedder, *, max_sentences: int = 5, min_similarity: float = 0.25):
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.min_similarity = min_similarity

    def sentences(self, texts: list[str]) -> list[Sentence]:
        out: list[Sentence] = []
        for i, t in enumerate(texts):
            out.extend(split_source(t, i, len(out)))
        return out

    def answer(self, question: str, texts: list[str]) -> list[Sentence]:
        """The chosen sentences, in source order (empty when nothing is relevant)."""
        sents = self.sentences(texts)
        if not sents:
            return []
        emb = self.embedder.encode([s.text for s in sents])
        sents, emb = _dedupe(sents, emb)
        q = self.embedder.encode([question])[0]
        rel = emb @ q
        picked = [i for i in mmr(q, emb, self.max_sentences) if rel[i] >= self.min_similarity]
        if not picked and len(rel):
            picked = [int(np.argmax(rel))]
        return sorted((sents[i] for i in picked), key=lambda s: s.order)

    def summarize(self, texts: list[str], *, n_points: int = 6, boost: Sequence[str] = (),
                  interest: np.ndarray | None = None, n_for_you: int = 5, words: str = "",
                  context: int = 0) -> dict:
        """Key points (LexRank), decisions, action items, open questions; each a Sentence.

        With an ``interest`` vector (the reader's profile) the summary is personalised: a
        ``for_you`` list first, the sentences ranked by a mix of closeness to the interest and
        centrality (sentences naming the reader, ``boost``, ahead), picked with MMR so they say
        different things; decisions and action items that involve the reader come first in
        their lists; ``also_discussed`` keeps the rest in brief. Only a decision, action item
        or open question may appear twice: in "for you" and in its own complete list.
        ``words``: the reader's interests in words (BM25 over the sentences adds to closeness);
        ``context``: closeness averaged over at least this many sentences on each side, one
        more per hundred sentences up to 6 (a meeting's topics run over stretches of talk; on
        QMSum the words and the context took the share of "For you" items from the reader's
        topic from 0.39 to 0.50, bench/personal_bench.py)."""
        empty: dict[str, list[Sentence]] = {
            k: [] for k in ("for_you", "key_points", "decisions", "action_items",
                            "open_questions", "also_discussed")}
        sents = self.sentences(texts)
        if not sents:
            return empty
        emb = self.embedder.encode([s.text for s in sents])
        sents, emb = _dedupe(sents, emb)
        scores = lexrank(emb)
        names = [b.lower() for b in boost if b]

        def named(s: Sentence) -> bool:
            low = s.text.lower()
            return any(b in low for b in names)

        def involves(s: Sentence) -> bool:  # names them, or they said it
            return named(s) or any(b in s.author.lower() for b in names)

        for i, s in enumerate(sents):  # what names or concerns the reader
            if named(s):
                scores[i] *= 1.5
        for_you: list[Sentence] = []
        if interest is not None:
            rel = _unit(emb @ interest)
            if words.strip():
                rel = _unit(rel + _unit(np.asarray(bm25_small(words, [x.text for x in sents]))))
            if context:  # a longer meeting's topics run longer: a sentence more per hundred
                context = max(context, min(6, len(sents) // 100))
                rel = window_mean(rel, context)
            cent = scores / (scores.max() or 1.0)
            # a sentence of a few words rarely says anything on its own ("And the header
            # name is final?"): such sentences go after all others
            short = np.array([len(s_.text.split()) < MIN_WORDS for s_ in sents], dtype=float)
            personal = (CLOSENESS * _unit(rel) + (1 - CLOSENESS) * _unit(cent)
                        + 0.15 * np.array([named(s) for s in sents], dtype=float) - 2.0 * short)
            picked = mmr_scores(personal, emb, n_for_you)
            for_you = sorted((sents[i] for i in picked), key=lambda s: s.order)
        # decisions, action items and open questions are listed whole (a reader scanning the
        # decisions must find them all), "for you" may repeat one; key points do not
        taken = {id(s) for s in for_you}
        decisions = [s for s in sents if DECISION.search(s.text)]
        actions = [s for s in sents if ACTION.search(s.text) and s not in decisions]
        if interest is not None:  # the reader's own decisions and actions first
            decisions.sort(key=lambda s: not involves(s))
            actions.sort(key=lambda s: not involves(s))
        questions = [s for s in sents if s.text.rstrip().endswith("?")]
        # an open question is one that nobody else answers in the next two sentences
        pos = {id(s): i for i, s in enumerate(sents)}

        def answered(q: Sentence) -> bool:
            after = sents[pos[id(q)] + 1 : pos[id(q)] + 3]
            return any(s.author and s.author != q.author and not s.text.endswith("?")
                       for s in after)

        open_q = [q for q in questions if not answered(q)][-4:]
        decisions, actions = decisions[:6], actions[:8]
        used = taken | {id(s) for s in decisions + actions + open_q}
        ranked = [sents[i] for i in np.argsort(-scores) if id(sents[i]) not in used]
        key = sorted(ranked[:n_points], key=lambda s: s.order)
        out = {**empty, "for_you": for_you, "key_points": key, "decisions": decisions,
               "action_items": actions, "open_questions": open_q}
        if interest is not None:
            out["also_discussed"] = sorted(ranked[n_points:n_points + 6], key=lambda s: s.order)
        return out


def window_mean(x: np.ndarray, c: int) -> np.ndarray:
    """Each value averaged with up to ``c`` neighbours on each side (fewer at the ends)."""
    sums = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    idx = np.arange(len(x))
    lo, hi = np.maximum(idx - c, 0), np.minimum(idx + c + 1, len(x))
    return (sums[hi] - sums[lo]) / (hi - lo)


def _unit(x: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] (a constant vector to zeros)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x, dtype=float)


def mmr_scores(score: np.ndarray, emb: np.ndarray, n: int, lam: float = 0.75) -> list[int]:
    """Maximal marginal relevance over given relevance scores (in [0, 1])."""
    chosen: list[int] = []
    candidates = list(range(len(emb)))
    while candidates and len(chosen) < n:
        red = (np.max(emb[candidates] @ emb[chosen].T, axis=1) if chosen
               else np.zeros(len(candidates)))
        best = candidates[int(np.argmax(lam * score[candidates] - (1 - lam) * red))]
        chosen.append(best)
        candidates.remove(best)
    return chosen
