"""The playground: a single page (plain HTML, CSS and JS from api/static) over the public API.

It needs nothing but the API: it picks a user (``/v1/users``), shows what that user may read
(``/v1/scope``), streams answers and summaries (``/v1/ask``, ``/v1/summaries``) and sends
feedback. The page is told in a ``<meta>`` tag whether it needs a key; keys are only ever sent
as ``Authorization`` headers by the page itself, never embedded in the HTML. Its routes are in
:mod:`api.routes.playground`."""

from __future__ import annotations

import hashlib
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

# Everything comes from this origin; no inline script, no third-party anything, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _version(*names: str) -> str:
    """A cache-busting token that changes whenever a static file does."""
    h = hashlib.sha256()
    for name in names:
        h.update((STATIC / name).read_bytes())
    return h.hexdigest()[:12]


def available() -> bool:
    return (STATIC / "playground.html").is_file()


def render_page(*, needs_key: bool) -> str:
    html = (STATIC / "playground.html").read_text(encoding="utf-8")
    return (html.replace("{{AUTH_MODE}}", "key" if needs_key else "none")
                .replace("{{VERSION}}", _version("playground.js", "playground.css")))
