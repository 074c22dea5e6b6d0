"""Dependencies every router shares: the object graph the composition root handed to the app.

Routers never import a runtime: they read it from ``request.app.state``, which ``create_app``
fills, so two apps over two runtimes (as the tests build) never see each other's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request


def get_runtime(request: Request) -> Any:
    return request.app.state.runtime


def get_live(request: Request) -> Any:
    return request.app.state.live


RuntimeDep = Annotated[Any, Depends(get_runtime)]
LiveDep = Annotated[Any, Depends(get_live)]
