"""FastAPI application: thin routers over the services the runtime built."""

from __future__ import annotations

import hmac
import json
import time
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from rag.answer import Source, collect
from rag.errors import InvalidRequest, OpenOpsError
from rag.search import MAX_K, SearchResult


class SearchRequest(BaseModel):
    user: str = Field(..., min_length=1, description="Username (or user id) to search as.")
    query: str = Field(..., min_length=1, description="The search text.")
    k: int = Field(8, ge=1, le=MAX_K, description="Number of results.")


class SearchResponseModel(BaseModel):
    results: list[SearchResult]


class AskRequest(BaseModel):
    user: str = Field(..., min_length=1, description="Username (or user id) asking.")
    question: str = Field(..., min_length=1, max_length=4000, description="The question.")
    conversation_id: str | None = Field(
        None, description="Continue a conversation (or ask a follow-up on a summary).")
    stream: bool = Field(False, description="Answer as Server-Sent Events.")


class AskResponse(BaseModel):
    answer: str
    sources: list[Source]
    conversation_id: str
    answer_id: str
    model: str


class SummaryRequest(BaseModel):
    user: str = Field(..., min_length=1)
    kind: Literal["thread", "channel", "meeting"]
    thread_id: str | None = Field(None, description="A post of the thread (kind=thread).")
    channel_id: str | None = Field(None, description="Channel id or name (kind=channel).")
    since: int | None = Field(None, description="Unix ms; summarise posts from then on.")
    days: float | None = Field(None, gt=0, le=3650, description="Or: the last N days.")
    file_id: str | None = Field(None, description="An attached WebVTT transcript (kind=meeting).")
    transcript: str | None = Field(
        None, max_length=2_000_000, description="Or: an uploaded WebVTT transcript's text.")
    stream: bool = False


class SummaryResponse(BaseModel):
    summary: str
    title: str
    sources: list[Source]
    conversation_id: str
    answer_id: str
    model: str


class FeedbackRequest(BaseModel):
    user: str = Field(..., min_length=1)
    answer_id: str = Field(..., min_length=1)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4000)


class ReindexRequest(BaseModel):
    scope: Literal["all"] | dict[str, str] = Field(
        "all", description='"all", {"team_id": ...} or {"channel_id": ...}')
    changed_only: bool = Field(
        False, description="Only posts changed since each channel's last sync (users, "
                           "channels and memberships are always read whole).")


class ErrorModel(BaseModel):
    error: str
    detail: object | None = None


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


def create_app(runtime, *, insecure_local: bool = False, live=None) -> FastAPI:
    """``live``: the bot, index worker and re-index jobs (:class:`bot.live.Live`); by default
    built from the settings, running the bot when OPENOPS_MATTERMOST_URL and _TOKEN are set."""
    from contextlib import asynccontextmanager

    from bot.live import Live

    live = live if live is not None else Live(runtime)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await live.start()
        try:
            yield
        finally:
            await live.stop()

    app = FastAPI(title="OpenOps", version="0.1.0", lifespan=lifespan,
                  description="Permission-aware search over a Mattermost workspace.")
    app.state.live = live
    bearer = HTTPBearer(auto_error=False)

    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        key = runtime.settings.api_key
        if insecure_local and not key:
            return
        keys = [k for k in (key, runtime.settings.admin_api_key) if k]
        if creds is None or not any(hmac.compare_digest(creds.credentials, k) for k in keys):
            raise _Unauthorised()

    @app.exception_handler(OpenOpsError)
    async def domain_error(_: Request, exc: OpenOpsError):
        return JSONResponse(status_code=exc.status, content={"error": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}",
                                                      "detail": problems})

    @app.exception_handler(_Unauthorised)
    async def unauthorised(_: Request, __: Exception):
        return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                            content={"error": "missing or wrong API key: send "
                                              "`Authorization: Bearer <OPENOPS_API_KEY>`"})

    @app.get("/healthz")
    def healthz() -> dict:
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

    @app.post("/v1/search", response_model=SearchResponseModel,
              responses={401: {"model": ErrorModel}, 404: {"model": ErrorModel},
                         422: {"model": ErrorModel}},
              dependencies=[Depends(authorised)])
    def search(body: SearchRequest) -> dict:
        live.refresh_reader_blocking(body.user)  # revocation applies at once (issue 9, item 4)
        return runtime.search.search(body.user, body.query, body.k).to_dict()

    def admin(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        key = runtime.settings.admin_api_key
        if insecure_local and not runtime.settings.api_key and not key:
            return
        if creds is None or not key or not hmac.compare_digest(creds.credentials, key):
            raise _Forbidden()

    @app.exception_handler(_Forbidden)
    async def forbidden(_: Request, __: Exception):
        return JSONResponse(status_code=403, content={
            "error": "this endpoint needs the admin key: send `Authorization: Bearer "
                     "<OPENOPS_ADMIN_API_KEY>` (or run with --insecure-local)"})

    app.add_middleware(MeasureRequests, metrics=runtime.metrics)

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

    @app.post("/v1/ask", response_model=AskResponse,
              responses={200: {"content": {"text/event-stream": {}}}, 401: {"model": ErrorModel},
                         404: {"model": ErrorModel}, 422: {"model": ErrorModel},
                         502: {"model": ErrorModel}},
              dependencies=[Depends(authorised)])
    async def ask(body: AskRequest):
        """Answer from what the user may read, with numbered citations. With `stream`: SSE
        events `token` (text), `sources` (list), `done` (answer_id, conversation_id), or
        `error`."""
        await live.refresh_reader(body.user)  # revocation applies at once (issue 9, item 4)
        if body.stream:
            return sse(await first_checked(runtime.answers.ask_events(
                body.user, body.question, body.conversation_id)))
        res = await runtime.answers.ask(body.user, body.question, body.conversation_id)
        return {"answer": res.answer, "sources": res.sources, "conversation_id":
                res.conversation_id, "answer_id": res.answer_id, "model": res.model}

    @app.post("/v1/summaries", response_model=SummaryResponse,
              responses={200: {"content": {"text/event-stream": {}}}, 401: {"model": ErrorModel},
                         404: {"model": ErrorModel}, 422: {"model": ErrorModel}},
              dependencies=[Depends(authorised)])
    async def summaries(body: SummaryRequest):
        """Summarise a thread, a channel since a time or over the last N days, or a meeting
        transcript: key points, decisions, action items, open questions. The returned
        `conversation_id` takes follow-up questions through /v1/ask."""
        await live.refresh_reader(body.user)  # revocation applies at once (issue 9, item 4)
        transcript = None
        if body.transcript:
            from ingest.extract import ExtractionError, extract

            try:
                transcript = extract("upload.vtt", body.transcript.encode()).text
            except ExtractionError as exc:
                raise InvalidRequest(f"transcript: {exc}") from exc
        events = runtime.answers.summarize_events(
            body.user, body.kind, thread_id=body.thread_id, channel_id=body.channel_id,
            since=body.since, days=body.days, file_id=body.file_id, transcript=transcript)
        events = await first_checked(events)
        if body.stream:
            return sse(events)
        text, sources, done = await collect(events)
        return {"summary": text, "title": done["title"], "sources": sources,
                "conversation_id": done["conversation_id"], "answer_id": done["answer_id"],
                "model": done["model"]}

    @app.post("/v1/feedback", dependencies=[Depends(authorised)],
              responses={404: {"model": ErrorModel}, 422: {"model": ErrorModel}})
    def feedback(body: FeedbackRequest) -> dict:
        """Record a 👍/👎 on an answer (every answer carries an `answer_id`)."""
        return runtime.answers.feedback(body.user, body.answer_id, body.rating, body.comment or "")

    @app.get("/v1/audit", dependencies=[Depends(admin)],
             responses={403: {"model": ErrorModel}})
    def audit(limit: int = 100, user: str | None = None) -> dict:
        """Who asked what, when, from which channels and sources, with which model (admins)."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit: must be between 1 and 1000")
        return {"records": runtime.answers.audit(limit=limit, user=user)}

    @app.get("/v1/users", dependencies=[Depends(admin)])
    def users() -> dict:
        """Active users of the mirror, for the playground's user picker (admins)."""
        from sqlalchemy import select

        from rag.db import User

        with runtime.db.session() as s:
            rows = list(s.scalars(select(User).where(User.delete_at == 0, User.is_bot.is_(False))
                                  .order_by(User.username)))
        return {"users": [{"id": u.id, "username": u.username, "name": u.display_name,
                           "position": u.position, "guest": u.is_guest} for u in rows]}

    @app.get("/v1/scope", dependencies=[Depends(authorised)])
    def scope(user: str) -> dict:
        """The channels a user may read right now (what a search or an answer draws on)."""
        live.refresh_reader_blocking(user)  # revocation applies at once (issue 9, item 4)
        from sqlalchemy import select

        from rag.db import Channel, Team

        sc = runtime.search.scope_for(user)
        with runtime.db.session() as s:
            chans = list(s.scalars(select(Channel).where(Channel.id.in_(list(sc.channels)))))
            teams = {t.id: t.name for t in s.scalars(select(Team))}
        return {"channels": sorted(
            ({"id": c.id, "name": c.name if c.type in ("O", "P") else c.display_name,
              "type": c.type, "team": teams.get(c.team_id or "", "")} for c in chans),
            key=lambda c: (c["team"], c["type"], c["name"]))}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return PlainTextResponse(runtime.metrics.render().decode(),
                                 media_type="text/plain; version=0.0.4")

    @app.post("/v1/reindex", status_code=202, dependencies=[Depends(admin)],
              responses={400: {"model": ErrorModel}, 401: {"model": ErrorModel}})
    async def reindex(body: ReindexRequest) -> dict:
        """Re-index from the live Mattermost server (admin key): the whole server, a team or a
        channel. Returns the job at once; follow it at ``GET /v1/jobs/{job_id}``."""
        return live.jobs.start(body.scope, incremental=body.changed_only)

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(admin)],
             responses={404: {"model": ErrorModel}})
    def job(job_id: str) -> dict:
        """A job's status and progress: channels, posts, files and chunks done, errors."""
        return live.jobs.get(job_id)

    @app.delete("/v1/jobs/{job_id}", dependencies=[Depends(admin)],
                responses={404: {"model": ErrorModel}})
    def cancel_job(job_id: str) -> dict:
        """Cancel a job (it stops after the page it is on; what it synced stays)."""
        return live.jobs.cancel(job_id)

    from bot.commands import router as command_router

    app.include_router(command_router(lambda: live.bot, runtime.settings))

    from api.playground import mount_playground

    mount_playground(app, runtime, insecure_local=insecure_local)
    return app


class _Forbidden(Exception):
    pass


class _Unauthorised(Exception):
    pass
