"""Time to first token added by OpenOps' generator layer over the provider's own first token.

Usage::

    .venv/bin/python bench/ttft_bench.py                  # 10 concurrent streams x 30 rounds
    .venv/bin/python bench/ttft_bench.py --rounds 100 --concurrency 20

A local OpenAI-protocol server (tests/doubles/llm_servers.py, in a separate process so its
work does not share our interpreter lock) answers instantly: the role chunk and the first
content chunk leave at once, the following chunks every ``--token-delay-ms`` (default 20 ms,
about 50 tokens/s like a hosted model; 0 sends everything at once). Each round starts
``--concurrency`` streams at the same moment through

* ``OpenAICompatibleGenerator.astream`` (LangChain ``ChatOpenAI`` -> openai SDK -> httpx2),
  one generator shared by all streams as in the server, and
* raw ``httpx`` streaming of the same request (same JSON body, same headers), parsing the
  SSE lines by hand - the floor any client pays,

alternating which of the two goes first. Time to first token is measured from the call to the
first non-empty ``delta.content`` (outside the generator for both, so it includes message
conversion); every stream is read to its end. Warm-up rounds (imports, connection pools) are
not counted. Printed: p50/p95 of both, of the difference of their percentiles, and of the
per-slot difference (stream i of the generator round minus stream i of the raw round).
Goal: the generator adds < 50 ms at p95 with 10 concurrent streams. Figures only: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from rag.llm.base import ChatMessage, Generation  # noqa: E402
from rag.llm.providers import OpenAICompatibleGenerator  # noqa: E402

KEY = "sk-bench"
MODEL = "bench-model"
GOAL_MS = 50.0
REPLY = (
    "The staging deploy failed because the database volume was full; Priya freed space and "
    "re-ran the migration, and the deploy went through at 14:05."
)
MESSAGES = [
    ChatMessage("system", "Answer from the context only. Cite the threads you used."),
    ChatMessage("user", "Why did the staging deploy fail yesterday and who fixed it?"),
]


def _serve(conn, reply: str, token_delay_s: float) -> None:  # runs in the server process
    sys.path.insert(0, str(ROOT))
    from tests.doubles.llm_servers import OpenAIServer

    srv = OpenAIServer(reply=reply, api_key=KEY, token_delay_s=token_delay_s, log_level="error").start()
    conn.send(srv.port)
    conn.recv()  # until the parent says stop
    srv.stop()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def raw_stream(client: httpx.AsyncClient, url: str, body: dict) -> float:
    """TTFT of a hand-parsed SSE stream; reads the stream to its end."""
    t0 = time.perf_counter()
    first: float | None = None
    async with client.stream("POST", url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if first is not None or not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            choices = json.loads(data).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter() - t0
    assert first is not None, "the server sent no content"
    return first


async def gen_stream(gen: OpenAICompatibleGenerator) -> float:
    t0 = time.perf_counter()
    first: float | None = None
    g = Generation()
    async for tok in gen.astream(MESSAGES, g):
        if first is None and tok:
            first = time.perf_counter() - t0
    assert first is not None and g.text == REPLY, g
    return first


async def main_async(args: argparse.Namespace, base_url: str) -> None:
    gen = OpenAICompatibleGenerator(MODEL, base_url=base_url, api_key=KEY, timeout_s=30, max_retries=0)
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"content": m.content, "role": m.role} for m in MESSAGES],
        "stream_options": {"include_usage": True},
    }
    url = base_url + "/chat/completions"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    raw_all: list[float] = []
    gen_all: list[float] = []
    pairs: list[float] = []
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for rnd in range(args.warmup + args.rounds):
            order = ("raw", "gen") if rnd % 2 == 0 else ("gen", "raw")
            got: dict[str, list[float]] = {}
            for kind in order:
                if kind == "raw":
                    coros = [raw_stream(client, url, body) for _ in range(args.concurrency)]
                else:
                    coros = [gen_stream(gen) for _ in range(args.concurrency)]
                got[kind] = list(await asyncio.gather(*coros))
                await asyncio.sleep(args.pause)
            if rnd < args.warmup:
                continue
            raw_all += got["raw"]
            gen_all += got["gen"]
            pairs += [g - r for g, r in zip(sorted(got["gen"]), sorted(got["raw"]))]
    await gen.aclose()

    ms = 1000.0
    print(
        f"\nstreams per path: {len(raw_all)} ({args.rounds} rounds x {args.concurrency} concurrent, "
        f"{args.warmup} warm-up rounds not counted; {args.token_delay_ms:g} ms between chunks "
        "after the first)"
    )
    print(f"{'':34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for label, vals in (
        ("raw httpx stream (floor)", raw_all),
        ("OpenAICompatibleGenerator.astream", gen_all),
        ("per-slot difference (gen - raw)", pairs),
    ):
        print(
            f"{label:34}{pct(vals, 0.5) * ms:10.1f}{pct(vals, 0.95) * ms:10.1f}"
            f"{statistics.fmean(vals) * ms:10.1f}"
        )
    d50 = (pct(gen_all, 0.5) - pct(raw_all, 0.5)) * ms
    d95 = (pct(gen_all, 0.95) - pct(raw_all, 0.95)) * ms
    print(f"{'added (gen pct - raw pct)':34}{d50:10.1f}{d95:10.1f}")
    verdict = "met" if d95 < GOAL_MS else "NOT met"
    print(
        f"goal: added < {GOAL_MS:.0f} ms at p95 with {args.concurrency} concurrent streams -> {verdict} "
        f"({d95:.1f} ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    ap.add_argument("--concurrency", type=int, default=10, help="streams started at once (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="rounds not counted (default 3)")
    ap.add_argument(
        "--token-delay-ms",
        type=float,
        default=20.0,
        help="gap between content chunks after the first (default 20 ms, ~50 tokens/s; "
        "0 sends the whole answer at once: a worst case where every stream's parsing "
        "competes with the others' first token)",
    )
    ap.add_argument("--pause", type=float, default=0.02, help="seconds between batches (default 0.02)")
    args = ap.parse_args()

    print(f"load average at start: {os.getloadavg()}")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, REPLY, args.token_delay_ms / 1000), daemon=True)
    proc.start()
    try:
        if not parent.poll(30):
            raise SystemExit("the protocol server did not start")
        port = parent.recv()
        asyncio.run(main_async(args, f"http://127.0.0.1:{port}/v1"))
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
