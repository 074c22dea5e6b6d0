"""Lexical scoring (BM25) over sparse term-frequency matrices, and rank fusion.

Chat questions often hinge on exact tokens — names, ids like ``SEC-2026-014``, service names like
``export-worker``, error strings — which a small dense model blurs. Terms are hashed into a
fixed space (no vocabulary to keep in sync), so a channel's matrix can be built on its own and
stacked with others at query time."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from scipy import sparse

N_FEATURES = 1 << 20
_TOKEN = re.compile(r"[\w][\w.\-/@']*[\w]|[\w]", re.UNICODE)
STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "i'm",
        "it's",
        "let's",
        "just",
        "also",
        "about",
        "any",
        "all",
        "been",
        "being",
        "than",
        "too",
        "very",
        "up",
        "out",
        "over",
        "what's",
        "should",
        "shall",
        "may",
        "might",
    ]
)
K1 = 1.2
B = 0.75


_POSSESSIVE = re.compile(r"'s$")
_SPLIT = re.compile(r"[.\-/@']")
_SEPARATORS = frozenset(".-/@'")


def tokens(text: str) -> list[str]:
    """Lower-cased terms; a compound (``export-worker``, ``v2.4``) also yields its parts."""
    out: list[str] = []
    for m in _TOKEN.finditer(text.lower()):
        t = m.group(0)
        if "'" in t:
            t = _POSSESSIVE.sub("", t).strip("'")
            if not t:
                continue
        if _SEPARATORS.isdisjoint(t):
            if t not in STOP:
                out.append(t)
            continue
        parts = _SPLIT.split(t)
        if len(parts) > 1:
            out.append(t)
            out.extend(p for p in parts if p and p not in STOP)
        elif t not in STOP:
            out.append(t)
    return out


@lru_cache(maxsize=8192)
def _doc_terms(text: str) -> Counter:
    """A text's term counts, remembered: the same chunks come back as candidates again and
    again (callers must not modify the result)."""
    return Counter(tokens(text))


def _col(term: str) -> int:
    return zlib.crc32(term.encode()) & (N_FEATURES - 1)


def term_matrix(texts: Sequence[str]) -> sparse.csc_matrix:
    """Rows = texts, columns = hashed terms, values = term frequency."""
    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        for t in tokens(text):
            rows.append(i)
            cols.append(_col(t))
    data = np.ones(len(rows), dtype=np.float32)
    m = sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), N_FEATURES), dtype=np.float32)
    m.sum_duplicates()
    return m.tocsc()


def query_columns(query: str) -> np.ndarray:
    return np.unique(np.fromiter((_col(t) for t in tokens(query)), dtype=np.int64))


def bm25(matrix: sparse.csc_matrix, doc_len: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """BM25 of every row of ``matrix`` for the query terms ``cols`` (IDF over these rows)."""
    n = matrix.shape[0]
    scores = np.zeros(n, dtype=np.float32)
    if n == 0 or cols.size == 0:
        return scores
    avg = float(doc_len.mean()) or 1.0
    norm = K1 * (1 - B + B * doc_len / avg)
    sub = matrix[:, cols]
    for j in range(sub.shape[1]):
        start, end = sub.indptr[j], sub.indptr[j + 1]
        if start == end:
            continue
        rows = sub.indices[start:end]
        tf = sub.data[start:end]
        df = end - start
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        scores[rows] += idf * tf * (K1 + 1) / (tf + norm[rows])
    return scores


def rrf(rankings: Iterable[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion of several rankings of the same items."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return fused


def bm25_small(query: str, texts: Sequence[str]) -> list[float]:
    """BM25 of a few texts (IDF among them), with plain counters: for re-ranking candidates,
    where building a hashed sparse matrix would cost more than the scoring."""
    q = set(tokens(query))
    if not q or not texts:
        return [0.0] * len(texts)
    docs = [_doc_terms(t) for t in texts]
    lengths = [sum(d.values()) for d in docs]
    avg = (sum(lengths) / len(lengths)) or 1.0
    n = len(docs)
    df = {t: sum(1 for d in docs if t in d) for t in q}
    out = []
    for d, length in zip(docs, lengths):
        norm = K1 * (1 - B + B * length / avg)
        score = 0.0
        for t in q:
            tf = d.get(t, 0)
            if tf:
                idf = float(np.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)))
                score += idf * tf * (K1 + 1) / (tf + norm)
        out.append(score)
    return out
