"""The FastAPI application: wiring only (state, exception handlers, middleware, routers,
lifespan). Each area's routes are in :mod:`api.routes`, authentication in :mod:`api.auth`."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors, playground
from api.auth import AuthConfig
from api.middleware import MeasureRequests
from api.routes import access, ask, feedback, health, jobs, search, summaries
from api.routes import playground as playground_routes

ROUTERS = (health, search, ask, summaries, feedback, access, jobs, playground_routes)


def create_app(runtime, *, insecure_local: bool = False, live=None) -> FastAPI:
    """``live``: the bot, index worker and re-index jobs (:class:`bot.live.Live`); by default
    built from the settings, running the bot when OPENOPS_MATTERMOST_URL and _TOKEN are set."""
    from bot.commands import router as command_router
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
    app.state.runtime = runtime
    app.state.live = live
    app.state.auth = AuthConfig(insecure_local=insecure_local)
    errors.install(app)
    app.add_middleware(MeasureRequests, metrics=runtime.metrics)
    for module in ROUTERS:
        app.include_router(module.router)
    app.include_router(command_router(lambda: live.bot, runtime.settings))
    if playground.available():
        app.mount("/static", StaticFiles(directory=playground.STATIC), name="static")
    return app
