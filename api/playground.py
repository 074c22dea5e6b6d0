"""The playground: a single page (plain HTML, CSS and JS from api/static) over the public API.

It needs nothing but the API: it picks a user (``/v1/users``), shows what that user may read
(``/v1/scope``), streams answers and summaries (``/v1/ask``, ``/v1/summaries``) and sends
feedback. The page is told in a ``<meta>`` tag whether it needs a key; keys are only ever sent
as ``Authorization`` headers by the page itself, never embedded in the HTML."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# Everything comes from this origin; no inline script, no third-party anything, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def _version(*names: str) -> str:
    """A cache-busting token that changes whenever a static file does."""
    h = hashlib.sha256()
    for name in names:
        h.update((STATIC / name).read_bytes())
    return h.hexdigest()[:12]


def render_page(*, needs_key: bool) -> str:
    html = (STATIC / "playground.html").read_text(encoding="utf-8")
    return (html.replace("{{AUTH_MODE}}", "key" if needs_key else "none")
                .replace("{{VERSION}}", _version("playground.js", "playground.css")))


def mount_playground(app: FastAPI, runtime, *, insecure_local: bool) -> None:
    """Serve the playground at ``GET /`` and its assets under ``/static``.

    ``insecure_local`` must be what ``create_app`` got: the page needs no key exactly when the
    API needs none (insecure-local without ``OPENOPS_API_KEY``)."""
    needs_key = not (insecure_local and not runtime.settings.api_key)
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

    if any(getattr(r, "path", None) == "/" for r in app.routes):
        return  # already mounted
    if not (STATIC / "playground.html").is_file():
        # an install without the package data: keep the API up, say what is missing
        @app.get("/", include_in_schema=False)
        def missing() -> PlainTextResponse:
            return PlainTextResponse(f"the playground's files are missing from {STATIC}; the "
                                     "API under /v1 works without them", status_code=503)
        return

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def playground() -> HTMLResponse:
        return HTMLResponse(render_page(needs_key=needs_key), headers=headers)

    if not any(getattr(r, "path", None) == "/static" for r in app.routes):
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
