"""Plain text and logs (decoded and split on blank lines) and CSV (stdlib :mod:`csv`, one
``a | b | c`` line per row)."""

from __future__ import annotations

import csv
import io

from .common import Extracted, ExtractionError, clean_inline, decode_text, normalize_document, short
from .limits import Budget

# ------------------------------------------------------------------------------------------------
# Plain text, logs, CSV
# ------------------------------------------------------------------------------------------------


def read_text(name: str, data: bytes, budget: Budget) -> Extracted:
    source = decode_text(name, data)
    text = normalize_document(source)
    title = None if name.lower().endswith(".log") else _plain_text_title(text)
    return Extracted(text=text, kind="file", title=title)


def _plain_text_title(text: str) -> str | None:
    """A first line that reads like a heading (short, no sentence punctuation, followed by more text)."""
    first, sep, rest = text.partition("\n")
    first = first.strip().lstrip("#").strip()
    if not sep or not rest.strip() or not first:
        return None
    if len(first) > 120 or len(first.split()) > 12 or first[-1] in ".,;:!?" or "\t" in first:
        return None
    if not any(ch.isalpha() for ch in first):
        return None
    return first


def read_csv(name: str, data: bytes, budget: Budget) -> Extracted:
    source = decode_text(name, data)
    sample = source[:64_000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    lines = []
    try:
        for row in csv.reader(io.StringIO(source, newline=""), dialect):
            cells = [clean_inline(cell) for cell in row]
            if any(cells):
                lines.append(" | ".join(cells))
    except csv.Error as exc:
        raise ExtractionError(
            f"the CSV could not be parsed ({short(exc)})",
            filename=name,
            hint="Check the quoting, or re-save it as UTF-8 CSV from a spreadsheet application",
        ) from exc
    return Extracted(text="\n".join(lines), kind="file", title=None)

