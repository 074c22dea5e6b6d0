"""ASGI middleware of the API."""

from __future__ import annotations

import time


class MeasureRequests:
    """Request counts and latency by route, as plain ASGI. (Starlette's ``@app.middleware``
    pipes every chunk of a streamed response through a memory stream and an extra task:
    on each SSE token of every concurrent answer, on the event loop the first tokens wait for.)
    Latency runs to the end of the response; the time to first token has its own histogram."""

    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)
