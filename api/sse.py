"""Server-Sent Events of the answer and summary streams, through sse-starlette: keep-alive pings
every ``OPENOPS_SSE_PING_S`` (proxies drop idle connections while a long summary maps its
parts), and the work stops when the client goes away (the service's generator is closed, which
closes the provider's stream)."""

from __future__ import annotations

import json

from fastapi import Request
from sse_starlette import EventSourceResponse

from rag.errors import OpenOpsError


def sse(request: Request, events) -> EventSourceResponse:
    async def body():
        try:
            async for ev in events:
                yield {"event": ev.type, "data": json.dumps(ev.data)}
        except OpenOpsError as exc:
            yield {"event": "error", "data": json.dumps({"error": str(exc)})}
        finally:
            await events.aclose()  # client gone or done: stop the work now, not at GC

    ping = request.app.state.runtime.settings.sse_ping_s
    return EventSourceResponse(body(), ping=ping, sep="\n",
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def first_checked(events):
    """Run the generator up to its first event so request errors become 4xx, not SSE."""
    it = events.__aiter__()
    first = await it.__anext__()

    async def chained():
        try:
            yield first
            async for ev in it:
                yield ev
        finally:
            await it.aclose()
    return chained()
