"""What every format module shares: the result and error types, decoding text, whitespace."""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from dataclasses import dataclass

logger = logging.getLogger(__name__)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# -- Leading bytes that mean "this is not a text document", whatever its extension says. --
_BINARY_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (ZIP_MAGIC, "a ZIP archive (e.g. .docx/.pptx/.xlsx)"),
    (OLE_MAGIC, "a legacy or encrypted Office file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
)


# ------------------------------------------------------------------------------------------------
# Public types
# ------------------------------------------------------------------------------------------------


class ExtractionError(Exception):
    """A file could not be read: corrupt, empty, or unsupported.

    ``str()`` names the file, gives the reason and says what to do, for example::

        cannot extract 'report.pdf': not a valid PDF (the %PDF- header is missing). Check the
        upload completed, or re-export the document as PDF.

    The attributes ``filename``, ``reason`` and ``hint`` hold those parts separately.
    """

    def __init__(self, reason: str, *, filename: str | None = None, hint: str | None = None):
        self.reason = reason
        self.filename = filename
        self.hint = hint
        parts = [f"cannot extract {filename!r}: {reason}" if filename else reason]
        if hint:
            parts.append(hint)
        super().__init__(". ".join(p.rstrip(". ") for p in parts) + ".")

    def __reduce__(self):  # -- crosses the extraction worker's pipe with its parts intact --
        return _rebuild_error, (self.reason, self.filename, self.hint)


def _rebuild_error(reason: str, filename: str | None, hint: str | None) -> ExtractionError:
    return ExtractionError(reason, filename=filename, hint=hint)


@dataclass
class Extracted:
    """The text of one document."""

    text: str
    """Paragraphs separated by blank lines. Tables are one line per row: ``a | b | c``.
    For transcripts: one ``[HH:MM:SS] Speaker: text`` line per (merged) cue."""
    kind: str
    """``"file"``, or ``"transcript"`` for ``.vtt``."""
    title: str | None
    """The document's own title or first heading, if it has one."""


@dataclass
class Cue:
    """One WebVTT cue, or one voice span inside a cue."""

    start: float
    """Start time in seconds."""
    end: float
    """End time in seconds."""
    speaker: str | None
    """Voice from ``<v Speaker>``, or a ``Name:`` prefix (see :func:`parse_webvtt`)."""
    text: str
    """Cue text without markup, whitespace collapsed to single spaces."""



# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------

_META_CHARSET_RE = re.compile(
    rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE
)


def decode_text(name: str, data: bytes, *, is_html: bool = False) -> str:
    """Decode a text document: BOM, then UTF-8, then the HTML <meta> charset, then a detected
    charset (charset-normalizer), then cp1252. Raises for binary content."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")

    head = data[:8192]
    for magic, what in _BINARY_MAGICS:
        if head.startswith(magic):
            raise ExtractionError(
                f"the content is {what}, not text",
                filename=name,
                hint="Rename the file with its real extension, or upload the right file",
            )
    if b"\x00" in head:
        raise ExtractionError(
            "the content is binary, not text",
            filename=name,
            hint="Upload the document in a supported text or document format",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if is_html:
        match = _META_CHARSET_RE.search(data[:4096])
        if match:
            try:
                return data.decode(match.group(1).decode("ascii"), errors="replace")
            except LookupError:
                pass
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data[:1_000_000]))
        if matches:
            # -- On short text several 8-bit code pages tie. When Windows-1252/Latin-1 is among
            # -- the best guesses, use it: it is by far the most common legacy encoding. --
            least_chaos = min(m.chaos for m in matches)
            tied = [m for m in matches if m.chaos <= least_chaos + 0.01]
            western = [m for m in tied if m.encoding in ("cp1252", "iso8859_15", "latin_1")]
            chosen = western[0] if western else max(tied, key=lambda m: m.coherence)
            return data.decode(chosen.encoding, errors="replace")
    except Exception:  # -- charset detection is best-effort
        logger.debug("charset detection failed for %s", name, exc_info=True)
    return data.decode("cp1252", errors="replace")


_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_INLINE_WS_RE = re.compile(r"\s+")
_TRAILING_WS_RE = re.compile(r"[ \t]+\n")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")


def clean_inline(text: str) -> str:
    """Collapse all whitespace (including newlines) to single spaces."""
    return _INLINE_WS_RE.sub(" ", _CONTROL_CHARS_RE.sub("", text.replace("\xa0", " "))).strip()


def clean_block(text: str) -> str:
    """Trim a paragraph but keep its line breaks."""
    text = _CONTROL_CHARS_RE.sub("", text.replace("\xa0", " "))
    return "\n".join(_INLINE_WS_RE.sub(" ", line).strip() for line in text.split("\n")).strip()


def normalize_document(text: str) -> str:
    """Unicode NFC, LF newlines, no control characters or trailing spaces, and at most one
    blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL_CHARS_RE.sub("", text)
    text = _TRAILING_WS_RE.sub("\n", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _MANY_NEWLINES_RE.sub("\n\n", text).strip()


def short(exc: BaseException, limit: int = 200) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"
