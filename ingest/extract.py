"""Turn an uploaded file's bytes into plain text for indexing, fully offline.

Public API: :data:`SUPPORTED_EXTENSIONS`, :func:`extract`, :class:`Extracted`,
:class:`ExtractionError`, :func:`parse_webvtt` and :class:`Cue`.

How each format is read
-----------------------
========================  =========================================================
``.docx``                 ``unstructured.partition.docx`` (python-docx)
``.pptx``                 ``unstructured.partition.pptx`` (python-pptx), with notes
``.html`` ``.htm``        ``unstructured.partition.html``
``.md`` ``.markdown``     ``unstructured.partition.md`` (markdown -> HTML)
``.pdf``                  pdfminer.six layout analysis, directly (see below)
``.txt`` ``.text`` ``.log``  decoded and split on blank lines, here
``.csv``                  stdlib :mod:`csv`, one ``a | b | c`` line per row
``.vtt``                  :func:`parse_webvtt`, here
========================  =========================================================

Running unstructured offline (unstructured 0.27.32)
---------------------------------------------------
1. **Telemetry and the usage notice.** ``import unstructured`` sends a ping to
   packages.unstructured.io unless ``DO_NOT_TRACK`` or ``SCARF_NO_ANALYTICS`` is set. Every
   ``partition_*`` call also prints a sales banner to a TTY stdout, or logs it as a warning,
   unless ``UNSTRUCTURED_DISABLE_NOTICE=1``. This module sets defaults for all three with
   ``os.environ.setdefault`` when it is imported, so it has to be imported before anything
   else imports ``unstructured``.

2. **The spaCy model.** The docx, pptx, html, md and text partitioners classify each
   paragraph as NarrativeText, Title or Text with
   ``unstructured.partition.text_type.is_possible_narrative_text`` and ``is_possible_title``.
   Those call ``sent_tokenize``, ``word_tokenize`` and ``pos_tag`` in
   ``unstructured/nlp/tokenize.py``, which all go through ``_get_nlp()``. ``_get_nlp()`` runs
   ``spacy.load("en_core_web_sm")`` and, when that model isn't installed, downloads the wheel
   from github.com and installs it into site-packages (``_install_spacy_model``). Offline, that
   raises ``RuntimeError``. No partition argument skips this classification.

   :func:`_prepare_unstructured` is the one place that deals with it. It replaces
   ``unstructured.nlp.tokenize._get_nlp`` with :func:`_offline_spacy_pipeline`, which returns
   ``en_core_web_sm`` only if it is already installed and otherwise a blank
   ``spacy.blank("en")`` pipeline with a rule-based ``sentencizer``. It also replaces
   ``_install_spacy_model`` with a function that refuses to download, in case a later
   unstructured version loads the model some other way. With the blank pipeline the POS tags
   are empty, so ``contains_verb()`` is always False and some short sentences come out as
   ``Title`` instead of ``NarrativeText``. That is harmless here because this module never
   uses that heuristic category. Titles come only from document structure (HTML/Markdown
   headings, Word heading styles, slide title placeholders, document properties).
   ``tests/integration/test_extract.py`` blocks the network and fails if any download is
   attempted.

3. **PDF.** ``unstructured.partition.pdf`` can't be imported without the ``unstructured[pdf]``
   extra, even for ``strategy="fast"``. ``partition/pdf.py`` imports ``pi_heif`` at module
   level, and ``partition/pdf_image/pdfminer_processing.py`` imports ``unstructured_inference``
   at module level. ``unstructured_inference`` needs opencv, onnx, onnxruntime, timm,
   accelerate, matplotlib, transformers and torch. The extra also pins ``pypdf<7`` and adds
   pdf2image, pikepdf, google-cloud-vision and unstructured-pytesseract. The fast strategy is
   only pdfminer.six layout analysis, so this module runs that directly: one paragraph per
   pdfminer text box, in pdfminer's reading order. There is no OCR, so a scanned PDF with no
   text layer raises :class:`ExtractionError`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import html
import io
import logging
import os
import re
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from spacy.language import Language
    from unstructured.documents.elements import Element

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Cue",
    "Extracted",
    "ExtractionError",
    "extract",
    "parse_webvtt",
]

logger = logging.getLogger(__name__)

# -- Offline / quiet defaults for `unstructured`. Must be in place before `import unstructured`
# -- (telemetry ping at import) and before the first partition call (usage notice). setdefault so
# -- an operator can still override them explicitly.
_ENV_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}
for _key, _value in _ENV_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".pdf",
        ".docx",
        ".pptx",
        ".html",
        ".htm",
        ".md",
        ".markdown",
        ".txt",
        ".text",
        ".log",
        ".csv",
        ".vtt",
    }
)

# -- Upper bound on the uncompressed size of a .docx/.pptx package (zip-bomb guard). --
_MAX_OOXML_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
# -- Leading bytes that mean "this is not a text document", whatever its extension says. --
_BINARY_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (_ZIP_MAGIC, "a ZIP archive (e.g. .docx/.pptx/.xlsx)"),
    (_OLE_MAGIC, "a legacy or encrypted Office file"),
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
# Entry point
# ------------------------------------------------------------------------------------------------


def extract(filename: str, data: bytes) -> Extracted:
    """Extract text from a file's bytes.

    The extension of ``filename`` (case-insensitive; any directory part is ignored) picks the
    reader, and the bytes are checked against it: a ``.pdf`` has to be a PDF, a ``.docx`` has
    to be a Word package, a ``.txt`` must not be a binary file, and so on.

    Raises:
        ExtractionError: the type is unsupported, or the file is corrupt, password-protected,
            empty or has no extractable text. Failures inside the parsing libraries are wrapped
            in this error too, with the original exception as ``__cause__``.
    """
    name = os.path.basename(filename or "") or "<unnamed>"
    ext = os.path.splitext(name)[1].lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = f"'{ext}'" if ext else "(no extension)"
        raise ExtractionError(
            f"unsupported file type {shown}",
            filename=name,
            hint="Supported types: " + ", ".join(sorted(SUPPORTED_EXTENSIONS)),
        )
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.strip():
        raise ExtractionError(
            "the file is empty", filename=name, hint="Upload the file again with its content"
        )

    reader = _READERS[ext]
    try:
        result = reader(name, data)
    except ExtractionError:
        raise
    except Exception as exc:  # -- any parser failure means "corrupt file" to callers
        logger.debug("extraction of %s failed", name, exc_info=True)
        raise ExtractionError(
            f"the file looks corrupt or malformed ({type(exc).__name__}: {_short(exc)})",
            filename=name,
            hint=f"Open it in its application and re-save it as {ext}, then upload it again",
        ) from exc

    result.text = _normalize_document(result.text)
    if result.title is not None:
        result.title = _clean_inline(result.title)[:300] or None
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


# ------------------------------------------------------------------------------------------------
# unstructured: offline preparation (the single place that touches its NLP hook)
# ------------------------------------------------------------------------------------------------

_prepare_lock = threading.Lock()
_prepared = False


def _prepare_unstructured() -> None:
    """Make ``unstructured`` safe to use offline. Idempotent and thread-safe.

    1. Make sure the telemetry and notice opt-outs are set (see the module docstring).
    2. Replace ``unstructured.nlp.tokenize._get_nlp``, which downloads ``en_core_web_sm`` when
       it is missing, with :func:`_offline_spacy_pipeline`. ``word_tokenize``, ``pos_tag`` and
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
        for key, value in _ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        import unstructured.nlp.tokenize as nlp_tokenize

        if not hasattr(nlp_tokenize, "_get_nlp"):  # pragma: no cover - version drift guard
            logger.warning(
                "unstructured.nlp.tokenize._get_nlp not found (unstructured version changed?); "
                "cannot install the offline spaCy pipeline"
            )
        nlp_tokenize._get_nlp = _offline_spacy_pipeline  # type: ignore[attr-defined]
        nlp_tokenize._install_spacy_model = _refuse_model_download  # type: ignore[attr-defined]
        _prepared = True


@functools.lru_cache(maxsize=1)
def _offline_spacy_pipeline() -> Language:
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
        "(ingest.extract._offline_spacy_pipeline should have been used instead)"
    )


# ------------------------------------------------------------------------------------------------
# unstructured-based readers: docx, pptx, html, md
# ------------------------------------------------------------------------------------------------

# -- Layout furniture (running headers/footers, page numbers, page breaks): noise for search. --
_SKIP_CATEGORIES = frozenset({"Header", "Footer", "PageBreak", "PageNumber"})


def _read_docx(name: str, data: bytes) -> Extracted:
    package = _open_ooxml(name, data, required="word/document.xml", app="Word", ext=".docx")
    _prepare_unstructured()
    from unstructured.partition.docx import partition_docx

    elements = partition_docx(
        file=io.BytesIO(data),
        include_page_breaks=False,
        infer_table_structure=True,
        languages=[""],  # -- "" = skip langdetect; the language metadata isn't used --
    )
    text = _elements_to_text(elements)
    # -- Title: first paragraph in a "Title"/"Heading N" style, else the document properties. --
    title = _first_title(elements) or _ooxml_core_title(package)
    return Extracted(text=text, kind="file", title=title)


def _read_pptx(name: str, data: bytes) -> Extracted:
    package = _open_ooxml(
        name, data, required="ppt/presentation.xml", app="PowerPoint", ext=".pptx"
    )
    _prepare_unstructured()
    from unstructured.partition.pptx import partition_pptx

    elements = partition_pptx(
        file=io.BytesIO(data),
        include_page_breaks=False,
        # -- unstructured emits a slide's notes *before* its content; they are appended after it
        # -- below instead, so each slide reads title, body, notes. --
        include_slide_notes=False,
        infer_table_structure=True,
        languages=[""],
    )
    notes = _pptx_slide_notes(data)
    by_slide: dict[int, list[Element]] = {}
    for element in elements:
        by_slide.setdefault(getattr(element.metadata, "page_number", None) or 0, []).append(element)
    slides = []
    for number in sorted(set(by_slide) | set(notes)):
        slide_text = _elements_to_text(by_slide.get(number, []))
        note = notes.get(number)
        slides.append("\n\n".join(part for part in (slide_text, note) if part))
    text = "\n\n".join(slide for slide in slides if slide)
    # -- A slide's title placeholder becomes Title with depth 0. Titles guessed by the text
    # -- heuristic get depth >= 1, so they are not used. --
    title = _first_title(elements, max_depth=0) or _ooxml_core_title(package)
    if title and title.strip().lower() == "powerpoint presentation":  # -- template default --
        title = None
    return Extracted(text=text, kind="file", title=title)


def _pptx_slide_notes(data: bytes) -> dict[int, str]:
    """Speaker notes by 1-based slide number (slides without notes are left out)."""
    from pptx import Presentation

    notes: dict[int, str] = {}
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, start=1):
        if not slide.has_notes_slide:
            continue
        frame = slide.notes_slide.notes_text_frame
        text = _clean_block(frame.text) if frame is not None else ""
        if text:
            notes[number] = text
    return notes


def _read_html(name: str, data: bytes) -> Extracted:
    source = _decode_text(name, data, is_html=True)
    _prepare_unstructured()
    from unstructured.partition.html import partition_html

    elements = partition_html(text=source, languages=[""]) if source.strip() else []
    text = _elements_to_text(elements)
    title = _html_title_tag(source) or _first_title(elements)
    return Extracted(text=text, kind="file", title=title)


def _read_markdown(name: str, data: bytes) -> Extracted:
    source = _decode_text(name, data)
    front_title, body = _split_front_matter(source)
    _prepare_unstructured()
    from unstructured.partition.md import partition_md

    elements = partition_md(text=body, languages=[""]) if body.strip() else []
    text = _elements_to_text(elements)
    return Extracted(text=text, kind="file", title=front_title or _first_title(elements))


def _elements_to_text(elements: Iterable[Element]) -> str:
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
            item = _clean_inline(raw)
            if item:
                list_items.append(f"- {item}")
            continue
        flush_list()
        if category == "Table":
            html_table = getattr(element.metadata, "text_as_html", None)
            block = _html_table_to_rows(html_table) if html_table else ""
            block = block or _clean_inline(raw)
        elif category == "CodeSnippet":
            block = raw.strip("\n")
        else:
            block = _clean_block(raw)
        if block.strip():
            blocks.append(block)
    flush_list()
    return "\n\n".join(blocks)


def _first_title(elements: Sequence[Element], max_depth: int | None = None) -> str | None:
    for element in elements:
        if getattr(element, "category", "") != "Title":
            continue
        depth = getattr(element.metadata, "category_depth", None)
        if max_depth is not None and (depth or 0) > max_depth:
            continue
        text = _clean_inline(element.text or "")
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
        cells = [_clean_inline(cell.text_content()) for cell in row if cell.tag in ("td", "th")]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _open_ooxml(name: str, data: bytes, *, required: str, app: str, ext: str) -> zipfile.ZipFile:
    """Check that ``data`` is an Office Open XML package containing ``required``."""
    if data.startswith(_OLE_MAGIC):
        raise ExtractionError(
            f"this is a password-protected or legacy (pre-2007) {app} file, not {ext}",
            filename=name,
            hint=f"Remove the password, or open it in {app} and save it as {ext}",
        )
    if not data.startswith(_ZIP_MAGIC):
        raise ExtractionError(
            f"not a valid {ext} file (it is not a ZIP-based Office document)",
            filename=name,
            hint=f"Check the upload completed, or open it in {app} and save it as {ext}",
        )
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        infos = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError(
            f"the {ext} file is corrupt or truncated ({_short(exc)})",
            filename=name,
            hint="Upload it again, or open it in its application and re-save it",
        ) from exc
    names = {info.filename for info in infos}
    if required not in names:
        raise ExtractionError(
            f"not a valid {ext} file ({required} is missing from the package)",
            filename=name,
            hint=f"Open it in {app} and save it as {ext}",
        )
    if sum(info.file_size for info in infos) > _MAX_OOXML_UNCOMPRESSED_BYTES:
        raise ExtractionError(
            f"the {ext} package expands to more than {_MAX_OOXML_UNCOMPRESSED_BYTES // 2**20} MiB",
            filename=name,
            hint="Split the document or remove large embedded media",
        )
    return package


def _ooxml_core_title(package: zipfile.ZipFile) -> str | None:
    """``dc:title`` from ``docProps/core.xml``, if present."""
    try:
        from lxml import etree

        raw = package.read("docProps/core.xml")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(raw, parser)
        node = root.find("{http://purl.org/dc/elements/1.1/}title")
        title = _clean_inline(node.text or "") if node is not None else ""
        return title or None
    except Exception:  # noqa: BLE001 - properties are optional
        return None


_TITLE_TAG_RE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _html_title_tag(source: str) -> str | None:
    match = _TITLE_TAG_RE.search(source[:200_000])
    if not match:
        return None
    title = _clean_inline(html.unescape(re.sub(r"<[^>]*>", "", match.group(1))))
    return title or None


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


# ------------------------------------------------------------------------------------------------
# PDF: pdfminer.six layout analysis (what unstructured's "fast" strategy does; see module doc)
# ------------------------------------------------------------------------------------------------


def _read_pdf(name: str, data: bytes) -> Extracted:
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError(
            "not a valid PDF (the %PDF- header is missing)",
            filename=name,
            hint="Check the upload completed, or re-export the document as PDF",
        )
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
    except PDFPasswordIncorrect as exc:
        raise ExtractionError(
            "the PDF is password-protected",
            filename=name,
            hint="Upload a copy without a password",
        ) from exc
    except PDFEncryptionError as exc:
        raise ExtractionError(
            f"the PDF uses an unsupported encryption ({_short(exc)})",
            filename=name,
            hint="Print or export it to a new unencrypted PDF and upload that",
        ) from exc

    resources = PDFResourceManager(caching=True)
    # -- all_texts: also analyse text inside Form XObjects/figures (unstructured extracts those too)
    device = PDFPageAggregator(resources, laparams=LAParams(all_texts=True))
    interpreter = PDFPageInterpreter(resources, device)

    pages: list[str] = []
    first_page: list[tuple[str, float | None]] = []
    page_errors: list[Exception] = []
    page_iter = iter(PDFPage.create_pages(document))
    while True:
        try:
            page = next(page_iter)
        except StopIteration:
            break
        except Exception as exc:  # -- broken page tree: keep pages read so far
            logger.debug("page tree of %s is broken", name, exc_info=True)
            page_errors.append(exc)
            break
        try:
            interpreter.process_page(page)
            layout = device.get_result()
        except Exception as exc:  # -- one broken page shouldn't lose the rest
            logger.debug("skipping unreadable page in %s", name, exc_info=True)
            page_errors.append(exc)
            continue
        paragraphs = [p for box in _pdf_text_boxes(layout) for p in _pdf_box_paragraphs(box)]
        if paragraphs:
            if not pages:
                first_page = paragraphs
            pages.append("\n\n".join(text for text, _ in paragraphs))

    if not pages and page_errors:
        first = page_errors[0]
        raise ExtractionError(
            f"the PDF could not be parsed ({type(first).__name__}: {_short(first)})",
            filename=name,
            hint="Re-export or print it to a new PDF and upload that",
        ) from first
    title = _pdf_info_title(document) or _pdf_heading_title(first_page)
    return Extracted(text="\n\n".join(pages), kind="file", title=title)


def _pdf_text_boxes(container: Any) -> Iterable[Any]:
    """Text boxes of a pdfminer layout, descending into figures, in pdfminer's order."""
    from pdfminer.layout import LTContainer, LTTextContainer

    for obj in container:
        if isinstance(obj, LTTextContainer):
            yield obj
        elif isinstance(obj, LTContainer):
            yield from _pdf_text_boxes(obj)


def _pdf_box_paragraphs(box: Any) -> list[tuple[str, float | None]]:
    """Paragraphs of one pdfminer text box as (text, font size), with each paragraph's lines
    joined by spaces.

    pdfminer often puts a heading and the paragraph below it in the same box. A new paragraph
    starts wherever the main font size changes by more than 15 %.
    """
    from pdfminer.layout import LTChar, LTTextLine

    groups: list[list[str]] = []
    group_sizes: list[float | None] = []
    group_size: float | None = None
    for line in box:
        if not isinstance(line, LTTextLine):
            continue
        sizes = [round(ch.size, 1) for ch in line if isinstance(ch, LTChar)]
        size = max(set(sizes), key=sizes.count) if sizes else group_size
        if not groups or (
            size and group_size and abs(size - group_size) > 0.15 * max(size, group_size)
        ):
            groups.append([])
            group_sizes.append(size)
            group_size = size
        groups[-1].append(line.get_text())
    if not groups:  # -- a text container without lines: use its text as it is --
        groups, group_sizes = [[box.get_text()]], [None]
    paragraphs = [(_clean_inline(" ".join(g)), size) for g, size in zip(groups, group_sizes)]
    return [(text, size) for text, size in paragraphs if text]


def _pdf_heading_title(paragraphs: Sequence[tuple[str, float | None]]) -> str | None:
    """The first paragraph of page one if it is short and set at least 15 % larger than the
    page's body text (the font size carrying the most characters), i.e. it looks like a heading."""
    chars_by_size: dict[float, int] = {}
    for text, size in paragraphs:
        if size:
            chars_by_size[size] = chars_by_size.get(size, 0) + len(text)
    if not paragraphs or not chars_by_size:
        return None
    body_size = max(chars_by_size, key=lambda s: chars_by_size[s])
    text, size = paragraphs[0]
    if size and size >= 1.15 * body_size and len(text.split()) <= 20:
        return text
    return None


def _pdf_info_title(document: Any) -> str | None:
    """``/Title`` from the PDF's document-info dictionary, unless it is a placeholder."""
    from pdfminer.pdftypes import resolve1
    from pdfminer.utils import decode_text

    try:
        for info in document.info:
            value = resolve1(info.get("Title"))
            if isinstance(value, bytes):
                if value.startswith(codecs.BOM_UTF8):
                    value = value[3:].decode("utf-8", "replace")
                else:
                    value = decode_text(value)
            if not isinstance(value, str):
                continue
            title = _clean_inline(value)
            title = re.sub(r"^Microsoft (?:Word|PowerPoint) - ", "", title)
            placeholder = title.strip("()[]<> ").lower()
            if placeholder in {"", "untitled", "anonymous", "title", "document", "no title"}:
                continue
            if re.search(r"\.(?:docx?|pptx?|pdf|odt|rtf|txt|tex)$", title, re.IGNORECASE):
                continue
            return title
    except Exception:  # -- the info dict is optional, often malformed
        logger.debug("unreadable PDF info dictionary", exc_info=True)
    return None


# ------------------------------------------------------------------------------------------------
# Plain text, logs, CSV
# ------------------------------------------------------------------------------------------------


def _read_text(name: str, data: bytes) -> Extracted:
    source = _decode_text(name, data)
    text = _normalize_document(source)
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


def _read_csv(name: str, data: bytes) -> Extracted:
    source = _decode_text(name, data)
    sample = source[:64_000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    lines = []
    try:
        for row in csv.reader(io.StringIO(source, newline=""), dialect):
            cells = [_clean_inline(cell) for cell in row]
            if any(cells):
                lines.append(" | ".join(cells))
    except csv.Error as exc:
        raise ExtractionError(
            f"the CSV could not be parsed ({_short(exc)})",
            filename=name,
            hint="Check the quoting, or re-save it as UTF-8 CSV from a spreadsheet application",
        ) from exc
    return Extracted(text="\n".join(lines), kind="file", title=None)


# ------------------------------------------------------------------------------------------------
# WebVTT
# ------------------------------------------------------------------------------------------------

_VTT_TIMESTAMP = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_VTT_TIMING_RE = re.compile(rf"^\s*({_VTT_TIMESTAMP})\s*-->\s*({_VTT_TIMESTAMP})(?:\s.*)?$")
_VTT_HEADER_RE = re.compile(r"^WEBVTT(?:[ \t](.*))?$")
_VTT_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?>", re.IGNORECASE)
_VTT_TAG_RE = re.compile(r"<[^>]*>")
_VTT_RUBY_TEXT_RE = re.compile(r"<rt>.*?</rt>", re.IGNORECASE | re.DOTALL)
# -- "Jane Doe: text", as in Zoom transcripts (only used when no cue has a <v> tag) --
_VTT_NAME_PREFIX_RE = re.compile(
    r"^(?P<name>[^\W\d][^:<>\n]{0,48}?)\s*:\s+(?P<text>\S.*)$", re.DOTALL
)


def parse_webvtt(text: str) -> list[Cue]:
    """Parse a WebVTT document into cues.

    Handles: an optional BOM; the ``WEBVTT`` header line and header metadata; ``NOTE``,
    ``STYLE`` and ``REGION`` blocks; cue identifiers; ``HH:MM:SS.mmm`` and ``MM:SS.mmm``
    timings, with or without cue settings (a ``,`` decimal separator is accepted too); and
    ``<v Speaker Name>text</v>`` voice spans. A cue with several voices gives one :class:`Cue`
    per voice, all with the same timing. Other tags (``<c.x>``, ``<i>``, ``<b>``, ``<u>``,
    ``<lang>``, ``<ruby>``, inline timestamps) are removed, ``<rt>`` ruby text is dropped, and
    character references such as ``&amp;`` are decoded.

    If no cue has a voice tag, ``Name: text`` prefixes (as in Zoom transcripts) are read as
    speakers, but only when at least two cues and 60 % of all cues have one.

    Raises:
        ExtractionError: the text does not start with a ``WEBVTT`` header.
    """
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = _VTT_HEADER_RE.match(lines[0].rstrip()) if lines else None
    if header is None:
        raise ExtractionError(
            "not a WebVTT file (the first line must be 'WEBVTT')",
            hint="Export the transcript as WebVTT (.vtt)",
        )

    # -- Skip the header block. A sloppy file may have its first cue (or a cue id) right below. --
    i = 1
    while i < len(lines) and lines[i].strip():
        if "-->" in lines[i] or (i + 1 < len(lines) and "-->" in lines[i + 1]):
            break
        i += 1

    cues: list[Cue] = []
    block: list[str] = []
    for line in [*lines[i:], ""]:
        if line.strip():
            block.append(line)
            continue
        if block:
            cues.extend(_vtt_block_cues(block))
            block = []

    if cues and not any(c.speaker for c in cues):
        _apply_name_prefix_speakers(cues)
    return cues


def _vtt_block_cues(block: list[str]) -> list[Cue]:
    first = block[0].strip()
    if re.match(r"^(?:NOTE|STYLE|REGION)(?:\s|$)", first) and "-->" not in first:
        return []
    cues: list[Cue] = []
    timing: tuple[float, float] | None = None
    payload: list[str] = []
    for line in block:
        match = _VTT_TIMING_RE.match(line) if "-->" in line else None
        if match:
            if timing is not None:
                cues.extend(_vtt_payload_cues(timing, payload))
            timing = (_vtt_seconds(match.group(1)), _vtt_seconds(match.group(2)))
            payload = []
        elif timing is not None:
            payload.append(line)
        # -- else: a cue identifier (or junk) before the timing line: ignored --
    if timing is not None:
        cues.extend(_vtt_payload_cues(timing, payload))
    return cues


def _vtt_payload_cues(timing: tuple[float, float], payload: list[str]) -> list[Cue]:
    raw = "\n".join(payload)
    segments: list[tuple[str | None, str]] = []
    position = 0
    speaker: str | None = None
    for match in _VTT_VOICE_RE.finditer(raw):
        segments.append((speaker, raw[position : match.start()]))
        annotation = html.unescape(match.group(1) or "").strip()
        speaker = annotation or None
        position = match.end()
    segments.append((speaker, raw[position:]))

    cues: list[Cue] = []
    for who, chunk in segments:
        words = _vtt_plain(chunk)
        if not words:
            continue
        if cues and cues[-1].speaker == who:
            cues[-1].text = f"{cues[-1].text} {words}"
        else:
            cues.append(Cue(start=timing[0], end=timing[1], speaker=who, text=words))
    return cues


def _vtt_plain(chunk: str) -> str:
    chunk = _VTT_RUBY_TEXT_RE.sub("", chunk)
    chunk = _VTT_TAG_RE.sub("", chunk)
    return _clean_inline(html.unescape(chunk))


def _vtt_seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2])
    hours = int(parts[-3]) if len(parts) == 3 else 0
    return hours * 3600 + minutes * 60 + seconds


def _apply_name_prefix_speakers(cues: list[Cue]) -> None:
    matches = [_VTT_NAME_PREFIX_RE.match(c.text) for c in cues]
    valid = [m if m and len(m.group("name").split()) <= 5 else None for m in matches]
    hits = sum(1 for m in valid if m)
    if hits < 2 or hits < 0.6 * len(cues):
        return
    for cue, match in zip(cues, valid):
        if match:
            cue.speaker = match.group("name").strip()
            cue.text = match.group("text").strip()


def _read_vtt(name: str, data: bytes) -> Extracted:
    source = _decode_text(name, data)
    try:
        cues = parse_webvtt(source)
    except ExtractionError as exc:
        raise ExtractionError(exc.reason, filename=name, hint=exc.hint) from exc
    first_line = source.lstrip("\ufeff").split("\n", 1)[0].strip()
    header = _VTT_HEADER_RE.match(first_line)
    title = (header.group(1) or "").strip(" \t-–—:") if header else ""
    return Extracted(text=_render_transcript(cues), kind="transcript", title=title or None)


_MERGE_MAX_CHARS = 1000
_MERGE_MAX_GAP_SECONDS = 10.0


def _render_transcript(cues: Sequence[Cue]) -> str:
    """``[HH:MM:SS] Speaker: text`` lines. A speaker's consecutive cues are merged into one line
    while gaps stay under 10 s and the line under 1000 characters. An exact repeat of the
    previous cue's text (roll-up captions) is dropped."""
    merged: list[Cue] = []
    previous_text: str | None = None
    for cue in cues:
        if cue.text == previous_text:
            continue
        previous_text = cue.text
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.speaker == cue.speaker
            and cue.start - last.end <= _MERGE_MAX_GAP_SECONDS
            and len(last.text) + len(cue.text) < _MERGE_MAX_CHARS
        ):
            last.text = f"{last.text} {cue.text}"
            last.end = max(last.end, cue.end)
        else:
            merged.append(Cue(cue.start, cue.end, cue.speaker, cue.text))
    lines = []
    for cue in merged:
        total = int(cue.start)
        stamp = f"[{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}]"
        lines.append(f"{stamp} {cue.speaker}: {cue.text}" if cue.speaker else f"{stamp} {cue.text}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------

_META_CHARSET_RE = re.compile(
    rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE
)


def _decode_text(name: str, data: bytes, *, is_html: bool = False) -> str:
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


def _clean_inline(text: str) -> str:
    """Collapse all whitespace (including newlines) to single spaces."""
    return _INLINE_WS_RE.sub(" ", _CONTROL_CHARS_RE.sub("", text.replace("\xa0", " "))).strip()


def _clean_block(text: str) -> str:
    """Trim a paragraph but keep its line breaks."""
    text = _CONTROL_CHARS_RE.sub("", text.replace("\xa0", " "))
    return "\n".join(_INLINE_WS_RE.sub(" ", line).strip() for line in text.split("\n")).strip()


def _normalize_document(text: str) -> str:
    """Unicode NFC, LF newlines, no control characters or trailing spaces, and at most one
    blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL_CHARS_RE.sub("", text)
    text = _TRAILING_WS_RE.sub("\n", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _MANY_NEWLINES_RE.sub("\n\n", text).strip()


def _short(exc: BaseException, limit: int = 200) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


_READERS: dict[str, Callable[[str, bytes], Extracted]] = {
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".pptx": _read_pptx,
    ".html": _read_html,
    ".htm": _read_html,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".txt": _read_text,
    ".text": _read_text,
    ".log": _read_text,
    ".csv": _read_csv,
    ".vtt": _read_vtt,
}
