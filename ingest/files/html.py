"""HTML (.html, .htm) through ``unstructured.partition.html``."""

from __future__ import annotations

import html
import re

from .common import Extracted, clean_inline, decode_text
from .limits import Budget
from .offline import elements_to_text, first_title, prepare_unstructured


def read_html(name: str, data: bytes, budget: Budget) -> Extracted:
    source = decode_text(name, data, is_html=True)
    prepare_unstructured()
    from unstructured.partition.html import partition_html

    elements = partition_html(text=source, languages=[""]) if source.strip() else []
    text = elements_to_text(elements)
    title = _html_title_tag(source) or first_title(elements)
    return Extracted(text=text, kind="file", title=title)



_TITLE_TAG_RE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _html_title_tag(source: str) -> str | None:
    match = _TITLE_TAG_RE.search(source[:200_000])
    if not match:
        return None
    title = clean_inline(html.unescape(re.sub(r"<[^>]*>", "", match.group(1))))
    return title or None

