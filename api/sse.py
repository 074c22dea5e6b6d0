"""Server-Sent Events of the answer and summary streams."""

from __future__ import annotations

import json

from fastapi.responses import StreamingResponse

from rag.errors import OpenOpsError


def sse(events) -> StreamingResponse:
    async def body():
        try:
            async for ev in events:
                yield f"event: {ev.type}\ndata: {json.dumps(ev.data)}\n\n"
        except OpenOpsError as exc:
            yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n"
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def first_checked(events):
    """Run the generator up to its first event so request errors become 4xx, not SSE."""
    it = events.__aiter__()
    first = await it.__anext__()

    async def chained():
        yield first
        async for ev in it:
            yield ev
    return chained()
