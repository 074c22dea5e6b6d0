"""The FastAPI application: wiring only (state, exception handlers, middleware, routers,
lifespan). Each area's routes are in :mod:`api.routes`, authentication in :mod:`api.auth`."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors, playground
from api.auth import AuthConfig, MattermostTokens
from api.middleware import LoopbackHostOnly, MeasureRequests, Sessions
from api.routes import (
    access,
    ask,
    feedback,
    health,
    jobs,
    profile,
    search,
    signin,
    summaries,
    watches,
)
from api.routes import playground as playground_routes

ROUTERS = (health, search, ask, summaries, profile, feedback, watches, access, jobs, signin,
           playground_routes)


def _sign_in_problems(settings) -> list[str]:
    """What sign-in with Mattermost still needs, when it was asked for."""
    if not (settings.oauth_client_id or settings.oauth_client_secret):
        return []
    needs = {"OPENOPS_OAUTH_CLIENT_ID": settings.oauth_client_id,
             "OPENOPS_OAUTH_CLIENT_SECRET": settings.oauth_client_secret,
             "OPENOPS_MATTERMOST_URL": settings.mattermost_url,
             "OPENOPS_SESSION_SECRET": settings.session_secret}
    missing = [name for name, value in needs.items() if not value]
    if settings.session_secret and len(settings.session_secret) < 32:
        missing.append("OPENOPS_SESSION_SECRET of at least 32 characters")
    return missing


def create_app(runtime, *, insecure_local: bool = False, live=None) -> FastAPI:
    """``live``: the bot, index worker and re-index jobs (:class:`bot.live.Live`); by default
    built from the settings, running the bot when OPENOPS_MATTERMOST_URL and _TOKEN are set."""
    from bot.commands import router as command_router
    from bot.live import Live

    settings = runtime.settings
    missing = _sign_in_problems(settings)
    if missing:
        raise ValueError("sign-in with Mattermost needs " + ", ".join(missing))
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
    app.state.runtime = runtime
    app.state.live = live
    app.state.auth = AuthConfig(insecure_local=insecure_local)
    app.state.tokens = MattermostTokens(settings)
    app.state.oauth = None
    if settings.oauth_client_id:
        from authlib.integrations.starlette_client import OAuth

        app.state.oauth = OAuth()
        signin.register(app.state.oauth, settings)
    errors.install(app)
    # outermost last: the Host check first, then metrics, then the session cookie
    if settings.session_secret:
        app.add_middleware(Sessions, secret_key=settings.session_secret,
                           max_age=int(settings.session_hours * 3600),
                           secure=settings.session_cookie_secure)
    app.add_middleware(MeasureRequests, metrics=runtime.metrics)
    if insecure_local:
        app.add_middleware(LoopbackHostOnly)
    for module in ROUTERS:
        app.include_router(module.router)
    app.include_router(command_router(lambda: live.bot, settings))
    if playground.available():
        app.mount("/static", StaticFiles(directory=playground.STATIC), name="static")
    return app
