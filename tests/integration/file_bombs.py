"""Crafted hostile attachments for the limit tests: ZIP bombs (plain and inside a real .docx),
nested archives, a PDF with thousands of pages and a small PDF that keeps pdfminer busy."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

MIB = 2**20


def _zeros_member(z: zipfile.ZipFile, name: str, mib: int) -> None:
    """``mib`` MiB of zeros, streamed: deflate turns them into ~1 KiB per MiB (ratio ~1,000x)."""
    block = bytes(MIB)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with z.open(info, "w", force_zip64=True) as fh:
        for _ in range(mib):
            fh.write(block)


def zip_bomb(mib: int = 256) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "Quarterly numbers inside.")
        _zeros_member(z, "numbers.txt", mib)
    return buf.getvalue()


def docx_bomb(real_docx: bytes, mib: int = 256) -> bytes:
    """A real Word document with a huge, highly compressible part added to the package."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real_docx)) as src, \
            zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info, src.read(info))
        _zeros_member(z, "word/media/image1.bin", mib)
    return buf.getvalue()


def nested_zip(depth: int, text: str = "The nested handbook says: rotate keys monthly.") -> bytes:
    """``depth`` ZIP archives inside one another, the innermost holding ``handbook.txt``."""
    data, name = text.encode(), "handbook.txt"
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data, name = buf.getvalue(), f"level{depth - level}.zip"
    return data


def many_pages_pdf(pages: int) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for n in range(pages):
        c.drawString(72, 760, f"Page {n + 1} of the appendix.")
        c.showPage()
    c.save()
    return buf.getvalue()


def runaway_pdf(chars: int = 20_000) -> bytes:
    """One page of ``chars`` scattered one-letter text runs (~80 KB): pdfminer's layout analysis
    runs for minutes on it (measured: not done after 120 s)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    text = c.beginText()
    text.setFont("Helvetica", 2)
    for i in range(chars):
        text.setTextOrigin((i * 7) % 580, (i * 3) % 830)
        text.textOut("x")
    c.drawText(text)
    c.showPage()
    c.save()
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
