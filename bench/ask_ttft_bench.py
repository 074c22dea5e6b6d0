"""Time to first token that OpenOps adds over the provider's own, end to end through the API.

    .venv/bin/python bench/ask_ttft_bench.py [--rounds 20] [--concurrency 10] [--seconds 30]

A local OpenAI-protocol server (tests/doubles, its own process) answers instantly. OpenOps runs
as `openops serve` (its own process) on the sample workspace with
`OPENOPS_LLM=openai_compatible:bench`, pointed at that server. Each round starts
``--concurrency`` `POST /v1/ask {"stream": true}` requests at once and times each to its first
`token` event: scope from the mirror, query embedding, scoped retrieval and re-ranking, prompt
assembly, the provider's stream, the output guard and SSE. The provider's own first token is
timed the same way (raw streaming to the protocol server, same concurrency). Printed: p50/p95
of both and of the difference. Goal: OpenOps adds < 50 ms at p95 with 10 concurrent streams.
Figures only; nothing is asserted.

First, as a yardstick, one question at a time (**alone**); then two load shapes, both
printed:

* **burst**: each round starts ``--concurrency`` questions at the same instant, so the last
  one waits for the other nine to be retrieved first: the worst case, bounded by CPU (about
  nine times what one question costs alone, spread over the cores the interpreter can use).
* **steady**: ``--concurrency`` streams are always in flight (each client asks again as soon as
  its answer ends; starts staggered over one answer's length). The provider streams its answer
  at ``--token-ms`` per token after an instant first token, like a model serving 10 users; a
  new question's first token is timed while the other streams are running.
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


async def steady(args, api: str, provider: str) -> tuple[list[float], list[float]]:
    """Always ``concurrency`` streams in flight for ``seconds``; TTFTs after warm-up."""
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    answer_s = args.token_ms / 1000 * len(REPLY.split())

    async def loop(i: int, fn, out: list[float], until: float) -> None:
        await asyncio.sleep(answer_s * i / args.concurrency)  # staggered starts
        n = 0
        while time.perf_counter() < until:
            t = await fn(i, n)
            if n >= 1:  # the first of each client overlaps the staggered start-up
                out.append(t)
            n += 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def ours_one(i: int, n: int) -> float:
            return await ask_ttft(client, api, USERS[(i + n) % 5], QUESTIONS[(i * 3 + n) % 5])

        async def theirs_one(_i: int, _n: int) -> float:
            return await raw_stream(client, provider + "/chat/completions", body)

        ours: list[float] = []
        theirs: list[float] = []
        until = time.perf_counter() + args.seconds
        await asyncio.gather(*(loop(i, ours_one, ours, until) for i in range(args.concurrency)))
        until = time.perf_counter() + args.seconds
        await asyncio.gather(*(loop(i, theirs_one, theirs, until)
                               for i in range(args.concurrency)))
    return ours, theirs


def report(title: str, ours: list[float], theirs: list[float]) -> None:
    ms = 1000
    print(title)
    print(f"  provider's own first token    p50 {pct(theirs, .5) * ms:7.1f} ms   "
          f"p95 {pct(theirs, .95) * ms:7.1f} ms   (n={len(theirs)})")
    print(f"  /v1/ask first token event     p50 {pct(ours, .5) * ms:7.1f} ms   "
          f"p95 {pct(ours, .95) * ms:7.1f} ms   (n={len(ours)})")
    added50 = (pct(ours, .5) - pct(theirs, .5)) * ms
    added95 = (pct(ours, .95) - pct(theirs, .95)) * ms
    print(f"  added by OpenOps              p50 {added50:7.1f} ms   p95 {added95:7.1f} ms   "
          f"(goal: p95 < 50 ms: {'met' if added95 < 50 else 'MISSED'})")


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
        for r in range(args.rounds):  # one question at a time: what a question costs alone
            ours.append(await ask_ttft(client, api, USERS[r % 5], QUESTIONS[(r * 3) % 5]))
            theirs.append(await raw_stream(client, provider + "/chat/completions", body))
        report(f"alone: {args.rounds} questions one after another", ours, theirs)
        ours, theirs = [], []
        for r in range(args.rounds):
            ours += await asyncio.gather(*(
                ask_ttft(client, api, USERS[(r + i) % 5], QUESTIONS[(r * 3 + i) % 5])
                for i in range(args.concurrency)))
            theirs += await asyncio.gather(*(
                raw_stream(client, provider + "/chat/completions", body)
                for _ in range(args.concurrency)))
    report(f"burst: {args.rounds} rounds x {args.concurrency} questions started at once",
           ours, theirs)
    ours, theirs = await steady(args, api, provider)
    report(f"steady: {args.concurrency} streams always in flight for {args.seconds:.0f} s each, "
           f"{args.token_ms:.0f} ms per token", ours, theirs)
    print(f"load average {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0, help="steady phase length (each)")
    ap.add_argument("--token-ms", type=float, default=50.0,
                    help="provider's pace after its first token (steady and burst)")
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(child, REPLY, args.token_ms / 1000),
                                           daemon=True)
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
