"""FastAPI application: thin routers over the services the runtime built."""

from __future__ import annotations

import hmac
import time

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from rag.errors import OpenOpsError
from rag.search import MAX_K


class SearchRequest(BaseModel):
    user: str = Field(..., min_length=1, description="Username (or user id) to search as.")
    query: str = Field(..., min_length=1, description="The search text.")
    k: int = Field(8, ge=1, le=MAX_K, description="Number of results.")


class SearchResultModel(BaseModel):
    text: str
    score: float
    post_id: str
    thread_id: str
    channel_id: str
    channel_name: str
    team_name: str
    channel_type: str
    source: str
    permalink: str | None
    file_name: str | None = None
    first_ts: int = 0
    last_ts: int = 0


class SearchResponseModel(BaseModel):
    results: list[SearchResultModel]


class ErrorModel(BaseModel):
    error: str
    detail: object | None = None


def create_app(runtime, *, insecure_local: bool = False) -> FastAPI:
    app = FastAPI(title="OpenOps", version="0.1.0",
                  description="Permission-aware search over a Mattermost workspace.")
    bearer = HTTPBearer(auto_error=False)

    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        key = runtime.settings.api_key
        if insecure_local and not key:
            return
        if creds is None or not key or not hmac.compare_digest(creds.credentials, key):
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
        return {"status": "ok", "chunks": chunks,
                "took_ms": round((time.perf_counter() - t0) * 1000, 1)}

    @app.post("/v1/search", response_model=SearchResponseModel,
              responses={401: {"model": ErrorModel}, 404: {"model": ErrorModel},
                         422: {"model": ErrorModel}},
              dependencies=[Depends(authorised)])
    def search(body: SearchRequest) -> dict:
        return runtime.search.search(body.user, body.query, body.k).to_dict()

    return app


class _Unauthorised(Exception):
    pass
