"""Attachments are bounded: size, pages, extraction time, ZIP ratio, unpacked size and nesting.
Hostile files are reported with the setting to raise and skipped; the rest of an ingest goes on.
Real parsers, real worker process, real ingest (SQLite, Chroma, the embedding model)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ingest.files import Extracted, LimitExceeded, Limits, extract
from ingest.pipeline import ingest_path
from tests.workspace import WS

from . import conftest_extract_helpers as helpers
from . import file_bombs as bombs


@pytest.fixture(scope="module")
def real_docx(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("docx") / "plan.docx"
    return helpers.make_docx(path, heading="Migration plan",
                             paragraphs=["Cut over on Sunday at 02:00 UTC."]).read_bytes()


def _limit(excinfo: pytest.ExceptionInfo[LimitExceeded]) -> str:
    print(f"\n  limit hit: {excinfo.value}")
    return excinfo.value.setting


def test_a_zip_bomb_attachment_is_refused_from_its_directory():
    bomb = bombs.zip_bomb(256)  # 256 MiB of zeros in a ~0.25 MiB archive
    with pytest.raises(LimitExceeded) as info:
        extract("numbers.zip", bomb)
    assert _limit(info) == "OPENOPS_FILE_MAX_RATIO"
    assert "numbers.zip" in str(info.value) and "numbers.txt" in str(info.value)


def test_a_zip_bomb_inside_a_real_docx_is_refused(real_docx):
    assert "Sunday" in extract("plan.docx", real_docx).text  # the document itself is fine
    with pytest.raises(LimitExceeded) as info:
        extract("plan.docx", bombs.docx_bomb(real_docx, 256))
    assert _limit(info) == "OPENOPS_FILE_MAX_RATIO"
    assert "word/media/image1.bin" in str(info.value)


def test_the_total_unpacked_size_is_bounded_even_when_each_member_compresses_normally():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(3):
            z.writestr(f"part{n}.txt", " ".join(f"word{i * 7919 % 100_003}" for i in range(120_000)))
    data = buf.getvalue()
    assert "word" in extract("parts.zip", data).text
    with pytest.raises(LimitExceeded) as info:
        extract("parts.zip", data, limits=Limits(max_unpacked_bytes=2 * 2**20))
    assert _limit(info) == "OPENOPS_FILE_MAX_UNPACKED_MB"


def test_archives_are_read_member_by_member_and_nesting_is_bounded():
    inner = extract("handbook.zip", bombs.nested_zip(3)).text  # zip > zip > zip > handbook.txt
    assert "rotate keys monthly" in inner
    with pytest.raises(LimitExceeded) as info:
        extract("handbook.zip", bombs.nested_zip(4))
    assert _limit(info) == "OPENOPS_FILE_MAX_NESTING"


def test_a_docx_counts_as_one_level_of_nesting(real_docx):
    def zipped(name: str, data: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        return buf.getvalue()

    two = zipped("outer.zip", zipped("plan.docx", real_docx))  # zip > zip > docx: 3 levels
    assert "Sunday" in extract("plans.zip", two).text
    with pytest.raises(LimitExceeded) as info:
        extract("plans.zip", two, limits=Limits(max_nesting=2))
    assert _limit(info) == "OPENOPS_FILE_MAX_NESTING"


def test_a_huge_pdf_is_refused_by_its_page_count():
    with pytest.raises(LimitExceeded) as info:
        extract("appendix.pdf", bombs.many_pages_pdf(2500))
    assert _limit(info) == "OPENOPS_FILE_MAX_PAGES"
    small = extract("appendix.pdf", bombs.many_pages_pdf(3))
    assert "Page 3 of the appendix" in small.text


def test_slides_count_as_pages(tmp_path):
    deck = helpers.make_pptx(tmp_path / "deck.pptx", title="Q3", body="Revenue grew.",
                             notes="Say thanks.", table=[["a", "b"]]).read_bytes()
    assert "Revenue grew" in extract("deck.pptx", deck).text
    with pytest.raises(LimitExceeded) as info:
        extract("deck.pptx", deck, limits=Limits(max_pages=0))
    assert _limit(info) == "OPENOPS_FILE_MAX_PAGES"


def test_the_size_limit_applies_before_any_parsing():
    with pytest.raises(LimitExceeded) as info:
        extract("notes.txt", b"a" * 5000, limits=Limits(max_bytes=4096))
    assert _limit(info) == "OPENOPS_FILE_MAX_MB"


def test_a_runaway_parser_is_stopped_at_the_deadline_and_the_next_file_is_read():
    """A 80 KB PDF that keeps pdfminer busy for minutes: stopped after 3 s in the worker."""
    with pytest.raises(LimitExceeded) as info:
        extract("scatter.pdf", bombs.runaway_pdf(), limits=Limits(timeout_s=3))
    assert _limit(info) == "OPENOPS_FILE_TIMEOUT_S"
    after = extract("appendix.pdf", bombs.many_pages_pdf(2), limits=Limits(timeout_s=30))
    assert isinstance(after, Extracted) and "Page 2 of the appendix" in after.text


def test_an_ingest_reports_and_skips_hostile_files_and_completes(make_runtime, tmp_path: Path,
                                                                real_docx, capsys):
    data = tmp_path / "export" / "data"
    bombs.write(data / "numbers.zip", bombs.zip_bomb(256))
    bombs.write(data / "plan-bomb.docx", bombs.docx_bomb(real_docx, 256))
    bombs.write(data / "appendix.pdf", bombs.many_pages_pdf(2500))
    bombs.write(data / "plan.docx", real_docx)
    bombs.write(data / "handbook.zip", bombs.nested_zip(2))
    ws = WS().team("acme")
    ws.channel("acme", "general").channel("acme", "ops", "P")
    ws.user("ann.lee", {"acme": ["general", "ops"]})
    ws.post("acme", "general", "ann.lee", "Attachments for the audit, some of them odd.",
            attachments=["data/numbers.zip", "data/plan-bomb.docx", "data/appendix.pdf",
                         "data/plan.docx", "data/handbook.zip"])
    ws.post("acme", "ops", "ann.lee", "The pager rotation starts with Ann.", at=5)
    rt = make_runtime()
    report = ingest_path(rt, ws.write(tmp_path / "export" / "import.jsonl"))

    failed = sorted(report.load.files_failed)
    with capsys.disabled():
        print(f"\n  files indexed {report.load.files_ok}, skipped {len(failed)}:")
        for line in failed:
            print(f"    {line}")
        print(f"  index: {report.index.channels} channels, {report.index.chunks} chunks")
    assert report.load.files_ok == 2 and len(failed) == 3
    assert [f.split(":")[0] for f in failed] == ["appendix.pdf", "numbers.zip", "plan-bomb.docx"]
    assert "OPENOPS_FILE_MAX_PAGES" in failed[0] and "OPENOPS_FILE_MAX_RATIO" in failed[1]
    assert "OPENOPS_FILE_MAX_RATIO" in failed[2]
    assert report.index.channels == 2
    hits = rt.search.search("ann.lee", "how often do we rotate keys", k=5).results
    assert any(h.file_name == "handbook.zip" and "rotate keys monthly" in h.text for h in hits)
    hits = rt.search.search("ann.lee", "when is the cut over", k=5).results
    assert any(h.file_name == "plan.docx" for h in hits)
    assert rt.search.search("ann.lee", "pager rotation", k=1).results[0].source == "message"
