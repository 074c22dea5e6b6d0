"""The playground page at ``GET /`` (its assets are mounted under ``/static`` by the wiring)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from api import playground

router = APIRouter(include_in_schema=False)


@router.get("/")
def page(request: Request) -> Response:
    if not playground.available():
        # an install without the package data: keep the API up, say what is missing
        return PlainTextResponse(f"the playground's files are missing from {playground.STATIC}; "
                                 "the API under /v1 works without them", status_code=503)
    # the page needs no key exactly when the API needs none (insecure-local, no OPENOPS_API_KEY)
    needs_key = not (request.app.state.auth.insecure_local
                     and not request.app.state.runtime.settings.api_key)
    return HTMLResponse(playground.render_page(needs_key=needs_key), headers=playground.HEADERS)
