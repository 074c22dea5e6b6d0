"""Running unstructured offline (unstructured 0.27.32); the one place that touches its NLP hook.

1. **Telemetry and the usage notice.** ``import unstructured`` sends a ping to
   packages.unstructured.io unless ``DO_NOT_TRACK`` or ``SCARF_NO_ANALYTICS`` is set. Every
   ``partition_*`` call also prints a sales banner to a TTY stdout, or logs it as a warning,
   unless ``UNSTRUCTURED_DISABLE_NOTICE=1``. This module sets defaults for all three with
   ``os.environ.setdefault`` when it is imported (``ingest.files`` imports it first), so it has
   to be imported before anything else imports ``unstructured``.

2. **The spaCy model.** The docx, pptx, html, md and text partitioners classify each
   paragraph as NarrativeText, Title or Text with
   ``unstructured.partition.text_type.is_possible_narrative_text`` and ``is_possible_title``.
   Those call ``sent_tokenize``, ``word_tokenize`` and ``pos_tag`` in
   ``unstructured/nlp/tokenize.py``, which all go through ``_get_nlp()``. ``_get_nlp()`` runs
   ``spacy.load("en_core_web_sm")`` and, when that model isn't installed, downloads the wheel
   from github.com and installs it into site-packages (``_install_spacy_model``). Offline, that
   raises ``RuntimeError``. No partition argument skips this classification.

   :func:`prepare_unstructured` replaces ``unstructured.nlp.tokenize._get_nlp`` with
   :func:`offline_spacy_pipeline`, which returns ``en_core_web_sm`` only if it is already
   installed and otherwise a blank ``spacy.blank("en")`` pipeline with a rule-based
   ``sentencizer``. It also replaces ``_install_spacy_model`` with a function that refuses to
   download, in case a later unstructured version loads the model some other way. With the
   blank pipeline the POS tags are empty, so ``contains_verb()`` is always False and some short
   sentences come out as ``Title`` instead of ``NarrativeText``. That is harmless here because
   this package never uses that heuristic category. Titles come only from document structure
   (HTML/Markdown headings, Word heading styles, slide title placeholders, document
   properties). ``tests/integration/test_extract.py`` blocks the network and fails if any
   download is attempted.

Also here: turning unstructured's elements into the text the index reads.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .common import clean_block, clean_inline

if TYPE_CHECKING:  # pragma: no cover - typing only
    from spacy.language import Language
    from unstructured.documents.elements import Element

logger = logging.getLogger(__name__)

# -- Offline / quiet defaults for `unstructured`. Must be in place before `import unstructured`
# -- (telemetry ping at import) and before the first partition call (usage notice). setdefault so
# -- an operator can still override them explicitly.
ENV_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}
for _key, _value in ENV_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

# ------------------------------------------------------------------------------------------------
# unstructured: offline preparation (the single place that touches its NLP hook)
# ------------------------------------------------------------------------------------------------

_prepare_lock = threading.Lock()
_prepared = False


def prepare_unstructured() -> None:
    """Make ``unstructured`` safe to use offline. Idempotent and thread-safe.

    1. Make sure the telemetry and notice opt-outs are set (see the module docstring).
    2. Replace ``unstructured.nlp.tokenize._get_nlp``, which downloads ``en_core_web_sm`` when
       it is missing, with :func:`offline_spacy_pipeline`. ``word_tokenize``, ``pos_tag`` and
       ``sent_tokenize`` look up ``_get_nlp`` as a module global at call time, so replacing the
       attribute covers all three.
    3. Replace ``_install_spacy_model`` with :func:`_refuse_model_download` in case the code
       path changes in a later version.

    Written against unstructured 0.27.32. If a release renames these hooks, the network-blocking
    tests in ``tests/integration/test_extract.py`` fail.
    """
    global _prepared
    if _prepared:
        return
    with _prepare_lock:
        if _prepared:
            return
        for key, value in ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        import unstructured.nlp.tokenize as nlp_tokenize

        if not hasattr(nlp_tokenize, "_get_nlp"):  # pragma: no cover - version drift guard
            logger.warning(
                "unstructured.nlp.tokenize._get_nlp not found (unstructured version changed?); "
                "cannot install the offline spaCy pipeline"
            )
        nlp_tokenize._get_nlp = offline_spacy_pipeline  # type: ignore[attr-defined]
        nlp_tokenize._install_spacy_model = _refuse_model_download  # type: ignore[attr-defined]
        _prepared = True


@functools.lru_cache(maxsize=1)
def offline_spacy_pipeline() -> Language:
    """The spaCy pipeline unstructured uses for sentence splitting and POS tags, loaded offline.

    Uses ``en_core_web_sm`` if it is already installed as a package, which gives better element
    classification. Otherwise uses ``spacy.blank("en")`` with a rule-based ``sentencizer``,
    which needs no data files or downloads. Nothing is ever downloaded.
    """
    import spacy

    model = "en_core_web_sm"
    try:
        if spacy.util.is_package(model):
            return spacy.load(model, exclude=["ner", "lemmatizer", "attribute_ruler"])
    except Exception:  # -- broken/incompatible model install: use the blank one
        logger.debug("installed %s could not be loaded; using blank pipeline", model, exc_info=True)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _refuse_model_download() -> None:
    """Stands in for ``unstructured.nlp.tokenize._install_spacy_model``. Never downloads."""
    raise RuntimeError(
        "OpenOps runs unstructured offline and will not download the spaCy model "
        "(ingest.files.offline.offline_spacy_pipeline should have been used instead)"
    )


# ------------------------------------------------------------------------------------------------
# unstructured-based readers: docx, pptx, html, md
# ------------------------------------------------------------------------------------------------

# -- Layout furniture (running headers/footers, page numbers, page breaks): noise for search. --
_SKIP_CATEGORIES = frozenset({"Header", "Footer", "PageBreak", "PageNumber"})


def elements_to_text(elements: Iterable[Element]) -> str:
    """Join unstructured elements into blank-line-separated paragraphs.

    Consecutive list items are kept together as ``- item`` lines. Tables become one
    ``a | b | c`` line per row, taken from ``metadata.text_as_html``. Headers, footers, page
    numbers and page breaks are dropped.
    """
    blocks: list[str] = []
    list_items: list[str] = []

    def flush_list() -> None:
        if list_items:
            blocks.append("\n".join(list_items))
            list_items.clear()

    for element in elements:
        category = getattr(element, "category", "")
        if category in _SKIP_CATEGORIES:
            continue
        raw = getattr(element, "text", "") or ""
        if category == "ListItem":
            item = clean_inline(raw)
            if item:
                list_items.append(f"- {item}")
            continue
        flush_list()
        if category == "Table":
            html_table = getattr(element.metadata, "text_as_html", None)
            block = _html_table_to_rows(html_table) if html_table else ""
            block = block or clean_inline(raw)
        elif category == "CodeSnippet":
            block = raw.strip("\n")
        else:
            block = clean_block(raw)
        if block.strip():
            blocks.append(block)
    flush_list()
    return "\n\n".join(blocks)


def first_title(elements: Sequence[Element], max_depth: int | None = None) -> str | None:
    for element in elements:
        if getattr(element, "category", "") != "Title":
            continue
        depth = getattr(element.metadata, "category_depth", None)
        if max_depth is not None and (depth or 0) > max_depth:
            continue
        text = clean_inline(element.text or "")
        if text:
            return text
    return None


def _html_table_to_rows(table_html: str) -> str:
    """``<table>`` HTML -> one ``a | b | c`` line per row (empty rows dropped)."""
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(table_html)
    except Exception:  # noqa: BLE001 - fall back to the element's flat text
        return ""
    lines = []
    for row in root.iter("tr"):
        cells = [clean_inline(cell.text_content()) for cell in row if cell.tag in ("td", "th")]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)

