"""Time to first token that OpenOps adds over the provider's own, end to end through the API.

    .venv/bin/python bench/ask_ttft_bench.py [--rounds 20] [--concurrency 10]

A local OpenAI-protocol server (tests/doubles, its own process) answers instantly. OpenOps runs
as `openops serve` (its own process) on the sample workspace with
`OPENOPS_LLM=openai_compatible:bench`, pointed at that server. Each round starts
``--concurrency`` `POST /v1/ask {"stream": true}` requests at once and times each to its first
`token` event: scope from the mirror, query embedding, scoped retrieval and re-ranking, prompt
assembly, the provider's stream, the output guard and SSE. The provider's own first token is
timed the same way (raw streaming to the protocol server, same concurrency). Printed: p50/p95
of both and of the difference. Goal: OpenOps adds < 50 ms at p95 with 10 concurrent streams.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ttft_bench import KEY, REPLY, _serve, pct, raw_stream  # noqa: E402

QUESTIONS = [
    "What was the root cause of the security incident?",
    "When is the v2.4 release?",
    "Who owns the billing_events migration dry-run?",
    "What did we decide about cursor pagination?",
    "What is the on-call stipend?",
]
USERS = ["maria.gonzalez", "aisha.khan", "lucas.moreau", "priya.raman", "olivia.brooks"]


async def ask_ttft(client: httpx.AsyncClient, url: str, user: str, question: str) -> float:
    t0 = time.perf_counter()
    first = None
    async with client.stream("POST", url + "/v1/ask", json={
            "user": user, "question": question, "stream": True},
            headers={"Authorization": "Bearer bench"}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if first is None and line == "event: token":
                first = time.perf_counter() - t0
    assert first is not None, "no token event"
    return first


async def run(args, api: str, provider: str) -> None:
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):  # warm-up: model, caches, pools
            await asyncio.gather(*(ask_ttft(client, api, USERS[i % 5], QUESTIONS[i % 5])
                                   for i in range(args.concurrency)))
            await asyncio.gather(*(raw_stream(client, provider + "/chat/completions", body)
                                   for _ in range(args.concurrency)))
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(args.rounds):
            ours += await asyncio.gather(*(
                ask_ttft(client, api, USERS[(r + i) % 5], QUESTIONS[(r * 3 + i) % 5])
                for i in range(args.concurrency)))
            theirs += await asyncio.gather(*(
                raw_stream(client, provider + "/chat/completions", body)
                for _ in range(args.concurrency)))
    ms = 1000
    print(f"{args.rounds} rounds x {args.concurrency} concurrent streams, load {os.getloadavg()}")
    print(f"  provider's own first token    p50 {pct(theirs, .5) * ms:7.1f} ms   "
          f"p95 {pct(theirs, .95) * ms:7.1f} ms")
    print(f"  /v1/ask first token event     p50 {pct(ours, .5) * ms:7.1f} ms   "
          f"p95 {pct(ours, .95) * ms:7.1f} ms")
    added50 = (pct(ours, .5) - pct(theirs, .5)) * ms
    added95 = (pct(ours, .95) - pct(theirs, .95)) * ms
    print(f"  added by OpenOps              p50 {added50:7.1f} ms   p95 {added95:7.1f} ms   "
          f"(goal: p95 < 50 ms: {'met' if added95 < 50 else 'MISSED'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(child, REPLY, 0.0), daemon=True)
    proc.start()
    port = parent.recv()
    provider = f"http://127.0.0.1:{port}/v1"
    home = tempfile.mkdtemp(prefix="openops-ttft-")
    env = {**os.environ, "OPENOPS_HOME": home, "OPENOPS_API_KEY": "bench",
           "OPENOPS_LLM": "openai_compatible:bench", "OPENOPS_LLM_BASE_URL": provider,
           "OPENOPS_LLM_API_KEY": KEY}
    cli = [sys.executable, "-m", "api.cli"]
    print("ingesting the sample workspace...", flush=True)
    subprocess.run([*cli, "ingest", str(ROOT / "data" / "sample-workspace")], env=env,
                   cwd=ROOT, check=True, capture_output=True)
    from tests.conftest import free_port, wait_http

    api_port = free_port()
    server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(api_port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_http(api + "/healthz", timeout=120)
        asyncio.run(run(args, api, provider))
    finally:
        server.terminate()
        server.wait(20)
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
