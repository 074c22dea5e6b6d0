"""Health and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from api.deps import LiveDep, RuntimeDep

router = APIRouter()


@router.get("/healthz")
def healthz(runtime: RuntimeDep, live: LiveDep) -> dict:
    t0 = time.perf_counter()
    from sqlalchemy import text

    with runtime.db.session() as s:
        s.execute(text("SELECT 1"))
    chunks = runtime.index.count()
    if not live.configured:
        bot = "off"
    elif live.bot is None or live.bot.stream is None or not live.bot.stream.connected.is_set():
        bot = "connecting"
    else:
        bot = "connected"
    # not loading the model for a health check: "not loaded" until something needs it
    embedder = runtime.__dict__.get("embedder")
    return {"status": "ok", "chunks": chunks, "mattermost_bot": bot,
            "query_encoder": embedder.question_route if embedder else "not loaded",
            "took_ms": round((time.perf_counter() - t0) * 1000, 1)}


@router.get("/metrics", include_in_schema=False)
def metrics(runtime: RuntimeDep) -> Response:
    return PlainTextResponse(runtime.metrics.render().decode(),
                             media_type="text/plain; version=0.0.4")
