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


class LoopbackHostOnly:
    """For ``--insecure-local``: answer only requests addressed to this loopback server by
    name (``127.0.0.1``, ``localhost`` or ``[::1]``, with its port). A page elsewhere could
    otherwise point its own DNS name at 127.0.0.1 (DNS rebinding) and read the unauthenticated
    API from the browser of the person running it."""

    NAMES = ("127.0.0.1", "localhost", "[::1]")

    def __init__(self, app):
        self.app = app

    def allowed(self, scope) -> bool:
        host = ""
        for k, v in scope.get("headers") or []:
            if k == b"host":
                host = v.decode("latin-1").strip().lower()
                break
        port = (scope.get("server") or (None, None))[1]
        names = {f"{n}:{port}" for n in self.NAMES}
        if port in (80, None) and scope.get("scheme") in ("http", "ws"):
            names.update(self.NAMES)
        return host in names

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import JSONResponse

        port = (scope.get("server") or (None, None))[1]
        response = JSONResponse(status_code=421, content={
            "error": "this Host header is refused: with --insecure-local OpenOps answers only "
                     f"http://127.0.0.1:{port}, http://localhost:{port} or http://[::1]:{port} "
                     "(protection against DNS rebinding); open one of those"})
        await response(scope, receive, send)


class Sessions:
    """Starlette's signed-cookie sessions (itsdangerous), ``HttpOnly`` and ``SameSite=Lax``,
    ``Secure`` when the request came over HTTPS (or always, with ``secure=True``): one
    SessionMiddleware per answer, chosen by the request's scheme."""

    def __init__(self, app, *, secret_key: str, max_age: int, secure: bool | None,
                 cookie: str = "openops_session"):
        from starlette.middleware.sessions import SessionMiddleware

        common = dict(secret_key=secret_key, session_cookie=cookie, max_age=max_age,
                      same_site="lax")
        self.tls = SessionMiddleware(app, https_only=True, **common)
        self.plain = self.tls if secure else SessionMiddleware(app, https_only=False, **common)
        self.secure = secure

    async def __call__(self, scope, receive, send):
        over_tls = scope.get("scheme") in ("https", "wss")
        await (self.tls if over_tls or self.secure else self.plain)(scope, receive, send)
