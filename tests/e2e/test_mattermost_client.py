"""ingest.mattermost's client against the Mattermost double: the WebSocket's reconnect policy."""

from __future__ import annotations

import asyncio

from ingest.mattermost.client import Backoff, EventStream, Mattermost
from tests.doubles.mattermost import MattermostDouble


def test_backoff_grows_to_its_cap_and_starts_over_after_reset():
    b = Backoff(1.0, 8.0, jitter=False)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.next() == 1.0
    jittered = Backoff(1.0, 8.0)
    assert all(0.5 <= jittered.next() <= 1.0 * 2 ** n for n in range(5))


def test_the_websocket_backoff_starts_over_after_each_healthy_connection():
    """Drops after connections that said hello are each retried at the first step: the
    delays chosen stay at the minimum instead of doubling per drop (no timing asserted)."""
    double = MattermostDouble().start()
    try:
        double.add_bot("openops", "OpenOps")

        async def run() -> list[float]:
            mm = Mattermost(double.url, double.bot_token, ca_file=double.ca_file)
            connects: list[bool] = []

            async def on_connect(again: bool) -> None:
                connects.append(again)

            async def on_event(_event: dict) -> None:
                return None

            stream = EventStream(mm, on_event, on_connect, min_backoff=0.05, max_backoff=30)
            task = asyncio.create_task(stream.run())
            try:
                for n in range(1, 6):
                    while len(connects) < n:
                        await asyncio.sleep(0.02)
                    await asyncio.to_thread(double.drop_websockets)
                while len(connects) < 6:
                    await asyncio.sleep(0.02)
                return list(stream.delays)
            finally:
                stream.stop()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await mm.close()

        delays = asyncio.run(run())
    finally:
        double.stop()
    assert len(delays) == 5
    assert all(d <= 0.05 for d in delays), delays  # never 0.1, 0.2, 0.4, ... after a hello
