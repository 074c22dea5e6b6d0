"""Exception handlers: every error leaves the API as JSON with an ``error`` naming the fix."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from rag.errors import OpenOpsError

log = logging.getLogger("openops.api")


class Unauthorised(Exception):
    pass


class ServiceUnavailable(OpenOpsError):
    status = 503


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


async def domain_error(_: Request, exc: OpenOpsError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"error": str(exc)})


async def database_down(_: Request, exc: DBAPIError) -> JSONResponse:
    """The database went away (a restart, the network): 503 with Retry-After, no address."""
    log.warning("database error", exc_info=exc)
    down = isinstance(exc, OperationalError) or exc.connection_invalidated
    if not down:
        return JSONResponse(status_code=500,
                            content={"error": "internal database error (see the server log)"})
    return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
        "error": "the database is not answering: retry in a few seconds (operators: check "
                 "the database at OPENOPS_DATABASE_URL)"})


async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
    return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}",
                                                  "detail": problems})


async def unauthorised(_: Request, __: Exception) -> JSONResponse:
    return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                        content={"error": "missing or wrong credentials: send `Authorization: "
                                          "Bearer <OPENOPS_API_KEY>` or a Mattermost personal "
                                          "access token, or sign in with Mattermost"})


async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
    return JSONResponse(status_code=403, content={"error": exc.message})


_HTTP_FIXES = {
    400: "the body could not be parsed: send UTF-8 JSON with `Content-Type: application/json`",
    404: "no such endpoint: the API is described at /openapi.json",
    405: "method not allowed here: the API is described at /openapi.json",
}


async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (unknown path, wrong method, unparsable body), as
    JSON with an ``error`` like every other."""
    detail = exc.detail if isinstance(exc.detail, str) else None
    fix = _HTTP_FIXES.get(exc.status_code)
    message = f"{detail}: {fix}" if detail and fix and detail != "Not Found" else (
        fix or detail or "request refused")
    return JSONResponse(status_code=exc.status_code, content={"error": message},
                        headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(OpenOpsError, domain_error)
    app.add_exception_handler(DBAPIError, database_down)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Unauthorised, unauthorised)
    app.add_exception_handler(Forbidden, forbidden)
