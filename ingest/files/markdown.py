"""Markdown (.md, .markdown) through ``unstructured.partition.md`` (markdown -> HTML), with
YAML front matter's ``title:`` as the title."""

from __future__ import annotations

import re

from .common import Extracted, decode_text
from .limits import Budget
from .offline import elements_to_text, first_title, prepare_unstructured


def read_markdown(name: str, data: bytes, budget: Budget) -> Extracted:
    source = decode_text(name, data)
    front_title, body = _split_front_matter(source)
    prepare_unstructured()
    from unstructured.partition.md import partition_md

    elements = partition_md(text=body, languages=[""]) if body.strip() else []
    text = elements_to_text(elements)
    return Extracted(text=text, kind="file", title=front_title or first_title(elements))



_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE_RE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def _split_front_matter(source: str) -> tuple[str | None, str]:
    """Remove YAML front matter (``---`` ... ``---``) from Markdown and return its ``title:``."""
    match = _FRONT_MATTER_RE.match(source)
    if not match or len(match.group(1)) > 20_000:
        return None, source
    title_match = _FRONT_MATTER_TITLE_RE.search(match.group(1))
    title = title_match.group(1).strip().strip("'\"").strip() if title_match else None
    return (title or None), source[match.end() :]

