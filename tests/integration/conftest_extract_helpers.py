"""Helpers for ``test_extract.py``: a network guard and builders for real sample documents.

This is a plain module, not a ``conftest.py``, so pytest doesn't load it by itself. Import it
from a test module.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# -- Where libraries look for downloaded models and caches. They are pointed at an empty
# -- directory, so the tests can't pass because something happens to be cached on this machine.
CACHE_ENV_VARS = (
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "SPACY_DATA",
    "NLTK_DATA",
    "HF_HOME",
    "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE",
    "TORCH_HOME",
)

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0].lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class NetworkGuard:
    """Records every outbound network attempt that was blocked."""

    attempts: list[str] = field(default_factory=list)

    def blocked(self, what: str) -> OSError:
        self.attempts.append(what)
        return ConnectionRefusedError(f"network access blocked by test (offline mode): {what}")


def install_network_guard(monkeypatch: pytest.MonkeyPatch) -> NetworkGuard:
    """Block every non-loopback connection and DNS lookup until ``monkeypatch`` is undone.

    Patches ``socket.socket.connect``/``connect_ex``, ``socket.create_connection`` and
    ``socket.getaddrinfo``. Blocked attempts raise ``ConnectionRefusedError`` and are recorded
    in ``NetworkGuard.attempts``. Check that list afterwards, because some libraries catch the
    error (unstructured's telemetry wraps its request in ``suppress(Exception)``).
    """
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def allowed(sock: socket.socket, address: Any) -> bool:
        if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
            return True
        host = address[0] if isinstance(address, tuple) and address else address
        return _is_loopback(host)

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(self, address):
            raise guard.blocked(f"socket.connect{address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(self, address):
            raise guard.blocked(f"socket.connect_ex{address!r}")
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not _is_loopback(address[0]):
            raise guard.blocked(f"socket.create_connection{address!r}")
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise guard.blocked(f"socket.getaddrinfo({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return guard


def isolate_caches(monkeypatch: pytest.MonkeyPatch, empty_dir: Path) -> None:
    """Point HOME and the model/data cache variables at ``empty_dir``."""
    for var in CACHE_ENV_VARS:
        monkeypatch.setenv(var, str(empty_dir))


# ------------------------------------------------------------------------------------------------
# Sample document builders. Each writes a real file with the format's usual library and returns
# its path.
# ------------------------------------------------------------------------------------------------


def make_pdf(path: Path, *, title: str | None, heading: str, paragraphs: list[str]) -> Path:
    """A two-page PDF: a large heading, then ``paragraphs`` (the last one on page two).
    With ``title=None`` the document-info title is left as reportlab's "(anonymous)"."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph(heading, styles["Title"])]
    for i, text in enumerate(paragraphs):
        if i and i == len(paragraphs) - 1:
            story.append(PageBreak())  # -- make it a two-page document --
        story.append(Paragraph(text, styles["BodyText"]))
    info: dict[str, str] = {"title": title} if title is not None else {}
    SimpleDocTemplate(str(path), pagesize=A4, author="OpenOps tests", **info).build(story)
    return path


def make_docx(
    path: Path, *, heading: str, paragraphs: list[str], table: list[list[str]] | None = None
) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.add_paragraph("first bullet", style="List Bullet")
    document.sections[0].header.paragraphs[0].text = "Running header"
    document.save(str(path))
    return path


def make_pptx(path: Path, *, title: str, body: str, notes: str, table: list[list[str]]) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])  # -- "Title and Content" --
    slide.shapes.title.text = title
    slide.placeholders[1].text = body
    slide.notes_slide.notes_text_frame.text = notes

    second = deck.slides.add_slide(deck.slide_layouts[5])  # -- "Title Only" --
    second.shapes.title.text = "Capacity table"
    shape = second.shapes.add_table(
        len(table), len(table[0]), Inches(1), Inches(2), Inches(6), Inches(1.5)
    )
    for r, row in enumerate(table):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path
