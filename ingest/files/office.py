"""Word (.docx) and PowerPoint (.pptx) through unstructured (python-docx, python-pptx)."""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from .common import OLE_MAGIC, ZIP_MAGIC, Extracted, ExtractionError, clean_block, clean_inline, short
from .limits import Budget, check_pages, check_zip
from .offline import elements_to_text, first_title, prepare_unstructured

if TYPE_CHECKING:  # pragma: no cover - typing only
    from unstructured.documents.elements import Element

_SLIDE_RE = re.compile(r"ppt/slides/slide\d+\.xml")


def read_docx(name: str, data: bytes, budget: Budget) -> Extracted:
    package = open_ooxml(name, data, budget, required="word/document.xml", app="Word",
                         ext=".docx")
    prepare_unstructured()
    from unstructured.partition.docx import partition_docx

    elements = partition_docx(
        file=io.BytesIO(data),
        include_page_breaks=False,
        infer_table_structure=True,
        languages=[""],  # -- "" = skip langdetect; the language metadata isn't used --
    )
    text = elements_to_text(elements)
    # -- Title: first paragraph in a "Title"/"Heading N" style, else the document properties. --
    title = first_title(elements) or _ooxml_core_title(package)
    return Extracted(text=text, kind="file", title=title)


def read_pptx(name: str, data: bytes, budget: Budget) -> Extracted:
    package = open_ooxml(
        name, data, budget, required="ppt/presentation.xml", app="PowerPoint", ext=".pptx"
    )
    slides_in_package = sum(1 for n in package.namelist() if _SLIDE_RE.fullmatch(n))
    check_pages(name, slides_in_package, budget.limits, what="slides")
    prepare_unstructured()
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
        slide_text = elements_to_text(by_slide.get(number, []))
        note = notes.get(number)
        slides.append("\n\n".join(part for part in (slide_text, note) if part))
    text = "\n\n".join(slide for slide in slides if slide)
    # -- A slide's title placeholder becomes Title with depth 0. Titles guessed by the text
    # -- heuristic get depth >= 1, so they are not used. --
    title = first_title(elements, max_depth=0) or _ooxml_core_title(package)
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
        text = clean_block(frame.text) if frame is not None else ""
        if text:
            notes[number] = text
    return notes



def open_ooxml(name: str, data: bytes, budget: Budget, *, required: str, app: str, ext: str
               ) -> zipfile.ZipFile:
    """Check that ``data`` is an Office Open XML package containing ``required``."""
    if data.startswith(OLE_MAGIC):
        raise ExtractionError(
            f"this is a password-protected or legacy (pre-2007) {app} file, not {ext}",
            filename=name,
            hint=f"Remove the password, or open it in {app} and save it as {ext}",
        )
    if not data.startswith(ZIP_MAGIC):
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
            f"the {ext} file is corrupt or truncated ({short(exc)})",
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
    check_zip(name, package, budget)
    return package


def _ooxml_core_title(package: zipfile.ZipFile) -> str | None:
    """``dc:title`` from ``docProps/core.xml``, if present."""
    try:
        from lxml import etree

        raw = package.read("docProps/core.xml")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(raw, parser)
        node = root.find("{http://purl.org/dc/elements/1.1/}title")
        title = clean_inline(node.text or "") if node is not None else ""
        return title or None
    except Exception:  # noqa: BLE001 - properties are optional
        return None

