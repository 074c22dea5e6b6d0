"""Turn an uploaded file's bytes into plain text for indexing, fully offline.

Public API: :data:`SUPPORTED_EXTENSIONS`, :func:`extract`, :class:`Extracted`,
:class:`ExtractionError`, :func:`parse_webvtt` and :class:`Cue`. This module only dispatches;
each format has its own module:

========================  ============  =====================================================
``.docx``                 ``office``    ``unstructured.partition.docx`` (python-docx)
``.pptx``                 ``office``    ``unstructured.partition.pptx`` (python-pptx), notes
``.html`` ``.htm``        ``html``      ``unstructured.partition.html``
``.md`` ``.markdown``     ``markdown``  ``unstructured.partition.md`` (markdown -> HTML)
``.pdf``                  ``pdf``       pdfminer.six layout analysis, directly
``.txt`` ``.text`` ``.log``  ``text``   decoded and split on blank lines
``.csv``                  ``text``      stdlib :mod:`csv`, one ``a | b | c`` line per row
``.vtt``                  ``webvtt``    :func:`parse_webvtt`
``.zip``                  ``archive``   each supported member, nested archives included
========================  ============  =====================================================

``limits`` bounds what one file may cost (bytes, pages, seconds, ZIP ratio, unpacked size and
nesting); ``worker`` runs the third-party parsers in a child process with a deadline.

``offline`` keeps unstructured offline (no telemetry, no spaCy download) and turns its
elements into text; ``common`` holds the shared types, decoding and whitespace rules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from . import offline  # noqa: F401 - first: sets the unstructured opt-outs before any import of it
from .archive import read_zip
from .common import Cue, Extracted, ExtractionError, clean_inline, normalize_document, short
from .html import read_html
from .limits import Budget, LimitExceeded, Limits, check_size, default_limits
from .markdown import read_markdown
from .office import read_docx, read_pptx
from .pdf import read_pdf
from .text import read_csv, read_text
from .webvtt import parse_webvtt, read_vtt

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Cue",
    "Extracted",
    "ExtractionError",
    "LimitExceeded",
    "Limits",
    "extract",
    "parse_webvtt",
]

logger = logging.getLogger(__name__)

Reader = Callable[[str, bytes, Budget], Extracted]

_READERS: dict[str, Reader] = {
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".pptx": read_pptx,
    ".html": read_html,
    ".htm": read_html,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".log": read_text,
    ".csv": read_csv,
    ".vtt": read_vtt,
    ".zip": read_zip,
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_READERS)
# -- Read in-process even with a deadline: our own linear parsers, bounded by the size limit. --
_IN_PROCESS = frozenset({".txt", ".text", ".log", ".csv", ".vtt"})


def extract(filename: str, data: bytes, *, limits: Limits | None = None) -> Extracted:
    """Extract text from a file's bytes, within ``limits`` (default: the ``OPENOPS_FILE_*``
    settings of the environment).

    The extension of ``filename`` (case-insensitive; any directory part is ignored) picks the
    reader, and the bytes are checked against it: a ``.pdf`` has to be a PDF, a ``.docx`` has
    to be a Word package, a ``.txt`` must not be a binary file, and so on. Formats read by
    third-party parsers run in the worker process when ``limits.timeout_s`` > 0.

    Raises:
        LimitExceeded: the file is over one of the limits (an :class:`ExtractionError` naming
            the setting).
        ExtractionError: the type is unsupported, or the file is corrupt, password-protected,
            empty or has no extractable text. Failures inside the parsing libraries are wrapped
            in this error too, with the original exception as ``__cause__``.
    """
    limits = limits or default_limits()
    name, ext = _name_and_ext(filename)
    _check_type(name, ext)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    check_size(name, len(data), limits)
    if limits.timeout_s > 0 and ext not in _IN_PROCESS and data.strip():
        from .worker import extract_with_deadline

        return extract_with_deadline(name, data, limits)
    return extract_here(name, data, Budget(limits))


def _name_and_ext(filename: str) -> tuple[str, str]:
    name = os.path.basename(filename or "") or "<unnamed>"
    return name, os.path.splitext(name)[1].lower()


def _check_type(name: str, ext: str) -> None:
    if ext not in SUPPORTED_EXTENSIONS:
        shown = f"'{ext}'" if ext else "(no extension)"
        raise ExtractionError(
            f"unsupported file type {shown}",
            filename=name,
            hint="Supported types: " + ", ".join(sorted(SUPPORTED_EXTENSIONS)),
        )


def extract_here(filename: str, data: bytes, budget: Budget) -> Extracted:
    """:func:`extract` in this process, without a deadline (the worker, and archive members)."""
    name, ext = _name_and_ext(filename)
    _check_type(name, ext)
    check_size(name, len(data), budget.limits)
    if not data.strip():
        raise ExtractionError(
            "the file is empty", filename=name, hint="Upload the file again with its content"
        )

    reader = _READERS[ext]
    try:
        result = reader(name, data, budget)
    except ExtractionError:
        raise
    except Exception as exc:  # -- any parser failure means "corrupt file" to callers
        logger.debug("extraction of %s failed", name, exc_info=True)
        raise ExtractionError(
            f"the file looks corrupt or malformed ({type(exc).__name__}: {short(exc)})",
            filename=name,
            hint=f"Open it in its application and re-save it as {ext}, then upload it again",
        ) from exc

    result.text = normalize_document(result.text)
    if result.title is not None:
        result.title = clean_inline(result.title)[:300] or None
    if not result.text:
        raise ExtractionError(
            "no extractable text found",
            filename=name,
            hint=(
                "If it is a scanned PDF or contains only images, export it with a text layer "
                "(OCR is not supported)"
                if ext == ".pdf"
                else "Check that the file is not blank"
            ),
        )
    return result

