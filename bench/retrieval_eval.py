"""Dense vs lexical (BM25) vs fused retrieval on real developer chat (LiveChat Gitter).

Each manually disentangled dialog is indexed without its first message; the first message is the
query and the dialog is the gold answer (the evaluation the data set's README proposes). Chunks
are made by OpenOps' own Chunker, embedded by OpenOps' Embedder; the pool is all 749 dialogs of
the 8 rooms. Prints MRR@10 and recall@1/5/10 at dialog level for each method.

    .venv/bin/python bench/retrieval_eval.py [--data DIR]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from ingest.chunking import ChannelInfo, Chunker, Message
from rag.embeddings import Embedder
from rag.lexical import bm25, query_columns, rrf, term_matrix

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "livechat-gitter" / "data" / "manual"
LINE = re.compile(r"^(?:\d+\s+)?\[(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)\]\s+<([^>]+)>\s?(.*)$")


def dialogs(folder: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    out = []
    for f in sorted(folder.glob("*.txt")):
        cur: list[tuple[str, str]] = []
        for raw in f.read_text(errors="replace").splitlines() + ["-----"]:
            if raw.startswith("-----"):
                if len(cur) >= 3:
                    out.append((f.stem, cur))
                cur = []
                continue
            m = LINE.match(raw.strip())
            if m:
                cur.append((m.group(3), m.group(4).strip()))
    return out


def ranks_to_dialogs(order: np.ndarray, chunk_dialog: np.ndarray, top: int = 10) -> list[int]:
    seen: list[int] = []
    for i in order:
        d = int(chunk_dialog[i])
        if d not in seen:
            seen.append(d)
            if len(seen) == top:
                break
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    data = [d for d in dialogs(args.data) if len(d[1][0][1].split()) >= 4]
    emb = Embedder()
    tok = emb.model.tokenizer
    chunker = Chunker(lambda t: len(tok(t, add_special_tokens=False)["input_ids"]), max_tokens=200)
    texts, owner, queries = [], [], []
    for di, (room, msgs) in enumerate(data):
        ch = ChannelInfo(id=f"c{di}", team_id="t", type="O", name=room.lower(), display_name=room)
        posts = [Message(f"{di}-{j}", f"{di}-1" if j > 1 else "", nick, nick, 1_600_000_000_000 + j,
                         text) for j, (nick, text) in enumerate(msgs[1:], 1)]
        for c in chunker.chunk_channel(ch, posts):
            texts.append(c.text)
            owner.append(di)
        queries.append(msgs[0][1])
    owner_arr = np.array(owner)
    print(f"{len(data)} dialogs, {len(texts)} chunks, {len(queries)} queries")
    t0 = time.perf_counter()
    doc_emb = emb.encode(texts)
    q_emb = emb.encode(queries)
    print(f"embedded in {time.perf_counter() - t0:.1f}s")
    mat = term_matrix(texts)
    doc_len = np.asarray(mat.sum(axis=1), dtype=np.float32).ravel()
    results: dict[str, list[list[int]]] = {"dense": [], "bm25": [], "fused (RRF)": [],
                                           "dense30+bm25 rerank": []}
    for qi, q in enumerate(queries):
        dense = np.argsort(-(doc_emb @ q_emb[qi]))[:100]
        lex_scores = bm25(mat, doc_len, query_columns(q))
        lex = np.argsort(-lex_scores)[:100]
        lex = lex[lex_scores[lex] > 0]
        fused = rrf([dense.tolist(), lex.tolist()])
        fused_order = np.array(sorted(fused, key=lambda i: -fused[i]))
        results["dense"].append(ranks_to_dialogs(dense, owner_arr))
        results["bm25"].append(ranks_to_dialogs(lex, owner_arr) if lex.size else [])
        results["fused (RRF)"].append(ranks_to_dialogs(fused_order, owner_arr))
        # what search can afford at any scope: re-rank the dense candidates with BM25 among them
        cand = dense[:30]
        sub_scores = bm25(mat[cand], doc_len[cand], query_columns(q))
        lex_local = [int(cand[i]) for i in np.argsort(-sub_scores) if sub_scores[i] > 0]
        rr = rrf([cand.tolist(), lex_local])
        rerank = np.array(sorted(rr, key=lambda i: -rr[i]))
        results["dense30+bm25 rerank"].append(ranks_to_dialogs(rerank, owner_arr))
    print(f"\n{'method':<14} {'MRR@10':>7} {'R@1':>6} {'R@5':>6} {'R@10':>6}")
    for name, ranked in results.items():
        rr = [1 / (r.index(qi) + 1) if qi in r else 0.0 for qi, r in enumerate(ranked)]
        rec = {k: np.mean([qi in r[:k] for qi, r in enumerate(ranked)]) for k in (1, 5, 10)}
        print(f"{name:<14} {np.mean(rr):>7.3f} {rec[1]:>6.3f} {rec[5]:>6.3f} {rec[10]:>6.3f}")


if __name__ == "__main__":
    main()
