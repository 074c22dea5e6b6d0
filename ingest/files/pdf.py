"""PDF through pdfminer.six layout analysis, directly.

``unstructured.partition.pdf`` can't be imported without the ``unstructured[pdf]`` extra, even for
``strategy="fast"``. ``partition/pdf.py`` imports ``pi_heif`` at module level, and
``partition/pdf_image/pdfminer_processing.py`` imports ``unstructured_inference`` at module level.
``unstructured_inference`` needs opencv, onnx, onnxruntime, timm, accelerate, matplotlib,
transformers and torch. The extra also pins ``pypdf<7`` and adds pdf2image, pikepdf,
google-cloud-vision and unstructured-pytesseract. The fast strategy is only pdfminer.six layout
analysis, so this module runs that directly: one paragraph per pdfminer text box, in pdfminer's
reading order. There is no OCR, so a scanned PDF with no text layer raises
:class:`ExtractionError`.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .common import Extracted, ExtractionError, clean_inline, short
from .limits import Budget, LimitExceeded, check_pages

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
# PDF: pdfminer.six layout analysis (what unstructured's "fast" strategy does; see module doc)
# ------------------------------------------------------------------------------------------------


def read_pdf(name: str, data: bytes, budget: Budget) -> Extracted:
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
            f"the PDF uses an unsupported encryption ({short(exc)})",
            filename=name,
            hint="Print or export it to a new unencrypted PDF and upload that",
        ) from exc

    # -- The page tree's declared count first (cheap), then the pages actually met, which a
    # -- crafted file cannot understate. --
    check_pages(name, _declared_pages(document), budget.limits)
    resources = PDFResourceManager(caching=True)
    # -- all_texts: also analyse text inside Form XObjects/figures (unstructured extracts those too)
    device = PDFPageAggregator(resources, laparams=LAParams(all_texts=True))
    interpreter = PDFPageInterpreter(resources, device)

    pages: list[str] = []
    first_page: list[tuple[str, float | None]] = []
    page_errors: list[Exception] = []
    page_iter = iter(PDFPage.create_pages(document))
    seen = 0
    while True:
        try:
            page = next(page_iter)
            seen += 1
            check_pages(name, seen, budget.limits)
        except StopIteration:
            break
        except LimitExceeded:
            raise
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
            f"the PDF could not be parsed ({type(first).__name__}: {short(first)})",
            filename=name,
            hint="Re-export or print it to a new PDF and upload that",
        ) from first
    title = _pdf_info_title(document) or _pdf_heading_title(first_page)
    return Extracted(text="\n\n".join(pages), kind="file", title=title)


def _declared_pages(document: Any) -> int:
    """``/Count`` of the root page tree, 0 if missing or malformed."""
    from pdfminer.pdftypes import resolve1

    try:
        count = resolve1(resolve1(document.catalog["Pages"])["Count"])
        return int(count) if isinstance(count, int) else 0
    except Exception:  # noqa: BLE001 - the real count is checked page by page anyway
        return 0


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
    paragraphs = [(clean_inline(" ".join(g)), size) for g, size in zip(groups, group_sizes)]
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
            title = clean_inline(value)
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

