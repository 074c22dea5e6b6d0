"""Integration tests for ``ingest.files``: real files of every supported type, no network.

The autouse ``offline`` fixture blocks every non-loopback connection and DNS lookup, and points
HOME and the model caches at an empty directory. It also fails the test if anything tried to
connect, even when the library caught the error (unstructured's telemetry does). So these tests
fail if unstructured tries to download its spaCy model or send telemetry.
"""

from __future__ import annotations

import os
import random
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ingest.files import (
    SUPPORTED_EXTENSIONS,
    Cue,
    Extracted,
    ExtractionError,
    extract,
    parse_webvtt,
)
from ingest.files import offline as offline_module
from ingest.files.limits import default_limits

try:  # -- tests/integration may or may not be a package; support both layouts --
    from . import conftest_extract_helpers as helpers  # type: ignore[no-redef]
except ImportError:
    import conftest_extract_helpers as helpers  # type: ignore[no-redef]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest):
    """No network and no warm caches for the test. Any attempt to connect fails the test.
    The guard watches this process, so extraction runs here, not in the deadline worker
    (OPENOPS_FILE_TIMEOUT_S=0; tests/integration/test_limits.py covers the worker)."""
    helpers.isolate_caches(monkeypatch, tmp_path_factory.mktemp("empty-home"))
    monkeypatch.setenv("OPENOPS_FILE_TIMEOUT_S", "0")
    default_limits.cache_clear()
    request.addfinalizer(default_limits.cache_clear)
    guard = helpers.install_network_guard(monkeypatch)
    yield guard
    if guard.attempts:
        pytest.fail(f"network access attempted while offline: {guard.attempts}")


@pytest.fixture
def run(capfd: pytest.CaptureFixture[str]):
    """Extract a file written to disk, and check nothing was printed to stdout."""

    def _run(path: Path) -> Extracted:
        capfd.readouterr()
        result = extract(path.name, path.read_bytes())
        out = capfd.readouterr().out
        assert out == "", f"extract() printed to stdout: {out!r}"
        assert isinstance(result, Extracted)
        return result

    return _run


def _assert_paragraphs(text: str) -> None:
    assert text == text.strip()
    assert "\n\n\n" not in text
    assert "\r" not in text


# ------------------------------------------------------------------------------------------------
# The offline setup itself
# ------------------------------------------------------------------------------------------------


def test_network_guard_is_active(offline: helpers.NetworkGuard) -> None:
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen("https://github.com/explosion/spacy-models", timeout=5)
    assert offline.attempts, "the guard did not see the connection attempt"
    offline.attempts.clear()  # -- expected here; don't fail the test in teardown --


def test_unstructured_nlp_runs_without_spacy_model(run, tmp_path: Path) -> None:
    """The classification code that would download en_core_web_sm runs with the offline
    pipeline."""
    import spacy

    path = helpers.write(tmp_path / "nlp.txt", "The cat sat on the mat. It was happy.")
    run(path)
    offline_module.prepare_unstructured()

    import unstructured.nlp.tokenize as nlp_tokenize
    from unstructured.partition.text_type import is_possible_narrative_text, is_possible_title

    assert nlp_tokenize._get_nlp is offline_module.offline_spacy_pipeline
    with pytest.raises(RuntimeError, match="will not download"):
        nlp_tokenize._install_spacy_model()
    # -- these go through sent_tokenize / word_tokenize / pos_tag: would download the model --
    is_possible_narrative_text("The zebra migration finished at noon. Everyone went home happy.")
    is_possible_title("Quarterly Runbook")
    assert nlp_tokenize.sent_tokenize("One sentence here. Another one there.") == [
        "One sentence here.",
        "Another one there.",
    ]
    if not spacy.util.is_package("en_core_web_sm"):
        assert offline_module.offline_spacy_pipeline().pipe_names == ["sentencizer"]


def test_telemetry_and_notice_are_disabled_by_default() -> None:
    assert os.environ.get("DO_NOT_TRACK")
    assert os.environ.get("SCARF_NO_ANALYTICS")
    assert os.environ.get("UNSTRUCTURED_DISABLE_NOTICE") == "1"


# ------------------------------------------------------------------------------------------------
# One test per format
# ------------------------------------------------------------------------------------------------


def test_pdf(run, tmp_path: Path) -> None:
    sentence = "The orange giraffe restarted the primary database at midnight."
    later = "Page two confirms the failover drill passed without data loss."
    path = helpers.make_pdf(
        tmp_path / "incident.pdf",
        title="Incident Report 42",
        heading="Incident summary",
        paragraphs=[sentence, "A short second paragraph.", later],
    )
    result = run(path)
    assert sentence in result.text
    assert later in result.text
    assert "Incident summary" in result.text
    assert result.kind == "file"
    assert result.title == "Incident Report 42"
    assert result.text.index(sentence) < result.text.index(later)
    assert result.text.startswith("Incident summary\n\n")  # -- heading is its own paragraph --
    _assert_paragraphs(result.text)

    # -- no /Title in the document info: the large first heading is the title --
    path = helpers.make_pdf(
        tmp_path / "untitled.pdf", title=None, heading="Backup Policy", paragraphs=[sentence]
    )
    result = run(path)
    assert sentence in result.text
    assert result.title == "Backup Policy"


def test_docx(run, tmp_path: Path) -> None:
    sentence = "The zebra migration finished at noon on Tuesday."
    path = helpers.make_docx(
        tmp_path / "runbook.docx",
        heading="Quarterly Runbook",
        paragraphs=[sentence, "Second paragraph of the runbook."],
        table=[["host", "role", "zone"], ["db-1", "primary", "eu-west"]],
    )
    result = run(path)
    assert sentence in result.text
    assert "Second paragraph of the runbook." in result.text
    assert "host | role | zone\ndb-1 | primary | eu-west" in result.text
    assert "- first bullet" in result.text
    assert "Running header" not in result.text  # -- page furniture is dropped --
    assert result.title == "Quarterly Runbook"
    assert result.kind == "file"
    assert f"Quarterly Runbook\n\n{sentence}" in result.text
    _assert_paragraphs(result.text)


def test_pptx(run, tmp_path: Path) -> None:
    sentence = "The purple elephant deploys the release train on Fridays."
    notes = "Remember to mention the rollback plan."
    path = helpers.make_pptx(
        tmp_path / "deck.pptx",
        title="Release Process",
        body=sentence,
        notes=notes,
        table=[["service", "replicas"], ["api", "3"]],
    )
    result = run(path)
    assert sentence in result.text
    assert notes in result.text
    assert "service | replicas\napi | 3" in result.text
    # -- slide order: title, body, speaker notes, then the next slide --
    assert result.text.index("Release Process") < result.text.index(sentence)
    assert result.text.index(sentence) < result.text.index(notes)
    assert result.text.index(notes) < result.text.index("Capacity table")
    assert result.title == "Release Process"
    assert result.kind == "file"
    _assert_paragraphs(result.text)


def test_html(run, tmp_path: Path) -> None:
    sentence = "The silver falcon rotates the TLS certificates every ninety days."
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Ops &amp; Security Handbook</title>
<style>p {{ color: red; }}</style><script>var trackingSecret = "do-not-index";</script></head>
<body>
<h1>Certificate rotation</h1>
<p>{sentence}</p>
<p>Caf&eacute; menu &mdash; unrelated.</p>
<table><tr><th>cert</th><th>expires</th></tr><tr><td>api.example</td><td>2031-01-01</td></tr></table>
<ul><li>renew</li><li>deploy</li></ul>
</body></html>"""
    result = run(helpers.write(tmp_path / "handbook.html", page))
    assert sentence in result.text
    assert "Café menu — unrelated." in result.text
    assert "cert | expires\napi.example | 2031-01-01" in result.text
    assert "- renew\n- deploy" in result.text
    assert "trackingSecret" not in result.text
    assert "color: red" not in result.text
    assert result.title == "Ops & Security Handbook"
    _assert_paragraphs(result.text)

    # -- .htm without <title>: the first heading is the title --
    result = run(helpers.write(tmp_path / "page.htm", f"<h2>Only heading</h2><p>{sentence}</p>"))
    assert sentence in result.text
    assert result.title == "Only heading"


def test_markdown(run, tmp_path: Path) -> None:
    sentence = "The copper octopus archives chat logs after thirty days."
    doc = f"""---
title: Retention Policy
tags: [ops]
---
# Data retention

{sentence}

| store | days |
|-------|------|
| chat  | 30   |

```bash
openops purge --older-than 30d
```

- first point
- second point
"""
    result = run(helpers.write(tmp_path / "retention.md", doc))
    assert sentence in result.text
    assert "store | days\nchat | 30" in result.text
    assert "openops purge --older-than 30d" in result.text
    assert "- first point\n- second point" in result.text
    assert "tags:" not in result.text  # -- front matter is not content --
    assert result.title == "Retention Policy"
    _assert_paragraphs(result.text)

    result = run(helpers.write(tmp_path / "notes.markdown", f"## Notes\n\n{sentence}\n"))
    assert sentence in result.text
    assert result.title == "Notes"


def test_txt(run, tmp_path: Path) -> None:
    sentence = "The velvet badger watches the disk usage alerts overnight."
    content = f"On-call Handbook\r\n\r\n{sentence}\r\nSecond line of the same paragraph.\r\n\r\n\r\n\r\nLast."
    result = run(helpers.write(tmp_path / "oncall.txt", content))
    assert sentence in result.text
    assert result.text == (
        f"On-call Handbook\n\n{sentence}\nSecond line of the same paragraph.\n\nLast."
    )
    assert result.title == "On-call Handbook"
    assert result.kind == "file"

    # -- legacy 8-bit encodings are detected, .log and .text are plain text too --
    latin = "Résumé of the café incident: the naïve retry loop hammered the façade service."
    result = run(helpers.write(tmp_path / "legacy.text", latin, encoding="cp1252"))
    assert latin in result.text
    result = run(helpers.write(tmp_path / "app.log", f"2024-01-01 ERROR {sentence}\n"))
    assert sentence in result.text
    assert result.title is None


def test_csv(run, tmp_path: Path) -> None:
    sentence = "The amber walrus scales the worker pool before payday."
    content = f'id,owner,note\n1,alice,"{sentence}"\n2,bob,"quoted, with comma"\n'
    result = run(helpers.write(tmp_path / "tasks.csv", content))
    assert sentence in result.text
    assert result.text.splitlines() == [
        "id | owner | note",
        f"1 | alice | {sentence}",
        "2 | bob | quoted, with comma",
    ]
    result = run(helpers.write(tmp_path / "semi.csv", "a;b;c\n1;2;3\n4;5;6\n"))
    assert result.text == "a | b | c\n1 | 2 | 3\n4 | 5 | 6"


def test_vtt(run, tmp_path: Path) -> None:
    sentence = "The teal penguin promoted the staging build to production."
    vtt = f"""WEBVTT - Weekly ops sync

00:00:01.000 --> 00:00:04.000
<v Alice Smith>{sentence}</v>

00:00:04.500 --> 00:00:06.000
<v Alice Smith>Any objections?</v>

01:23.000 --> 01:25.500 align:start
<v Bob>None from me.</v>
"""
    result = run(helpers.write(tmp_path / "sync.vtt", vtt))
    assert result.kind == "transcript"
    assert result.title == "Weekly ops sync"
    assert result.text.splitlines() == [
        f"[00:00:01] Alice Smith: {sentence} Any objections?",
        "[00:01:23] Bob: None from me.",
    ]


# ------------------------------------------------------------------------------------------------
# WebVTT parser
# ------------------------------------------------------------------------------------------------

WEBVTT_SAMPLE = """\ufeffWEBVTT
Kind: captions
Language: en

STYLE
::cue { color: yellow; }

NOTE This is a comment
spanning two lines --> with an arrow-looking thing

intro
00:00:00.000 --> 00:00:02.500 line:90% position:50%
<v.loud Jane Doe>Hello <b>everyone</b>, welcome &amp; thanks.</v>

2
00:02.500 --> 00:05.000
<v Jane Doe>Let's <c.highlight>start</c> with the <00:00:03.000>agenda.
Second line of the cue.

3
01:02:03.250 --> 01:02:04.000
<v John>Sure.</v> <v Jane Doe>Great.</v>

4
00:00:06.000 --> 00:00:07.000
No speaker here, <i>just</i> text.
"""


def test_parse_webvtt_with_speakers() -> None:
    cues = parse_webvtt(WEBVTT_SAMPLE)
    assert cues == [
        Cue(0.0, 2.5, "Jane Doe", "Hello everyone, welcome & thanks."),
        Cue(2.5, 5.0, "Jane Doe", "Let's start with the agenda. Second line of the cue."),
        Cue(3723.25, 3724.0, "John", "Sure."),
        Cue(3723.25, 3724.0, "Jane Doe", "Great."),
        Cue(6.0, 7.0, None, "No speaker here, just text."),
    ]


def test_parse_webvtt_name_prefix_speakers() -> None:
    zoom = (
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nAlice Smith: Good morning.\n\n"
        "2\n00:00:02.000 --> 00:00:03.000\nBob: Morning!\n\n"
        "3\n00:00:03.000 --> 00:00:04.000\nAlice Smith: Let's begin.\n"
    )
    assert [(c.speaker, c.text) for c in parse_webvtt(zoom)] == [
        ("Alice Smith", "Good morning."),
        ("Bob", "Morning!"),
        ("Alice Smith", "Let's begin."),
    ]


@pytest.mark.parametrize(
    "text", ["", "1\n00:00:01,000 --> 00:00:02,000\nSRT, not VTT\n", "WEBVTTX\n", "<html></html>"]
)
def test_parse_webvtt_rejects_other_text(text: str) -> None:
    with pytest.raises(ExtractionError, match="not a WebVTT file"):
        parse_webvtt(text)


def test_vtt_extension_with_non_vtt_content(run, tmp_path: Path) -> None:
    path = helpers.write(tmp_path / "bad.vtt", "just some words\n")
    with pytest.raises(ExtractionError, match=r"bad\.vtt.*not a WebVTT file"):
        run(path)


# ------------------------------------------------------------------------------------------------
# Failure modes: always ExtractionError, quickly
# ------------------------------------------------------------------------------------------------


def _random_bytes(n: int, seed: int = 1234) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.timeout(60)
def test_corrupt_pdf(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match=r"broken\.pdf.*not a valid PDF"):
        extract("broken.pdf", _random_bytes(50_000))
    with pytest.raises(ExtractionError, match=r"garbage\.pdf"):
        extract("garbage.pdf", b"%PDF-1.7\n" + _random_bytes(50_000))

    real = helpers.make_pdf(
        tmp_path / "real.pdf", title="t", heading="Heading", paragraphs=["Some body text."] * 3
    ).read_bytes()
    for cut in (len(real) // 2, len(real) // 5, 40):
        try:
            result = extract("truncated.pdf", real[:cut])
        except ExtractionError as exc:
            assert "truncated.pdf" in str(exc)
        else:  # -- pdfminer can sometimes recover the text from a truncated file --
            assert result.text


@pytest.mark.timeout(60)
def test_corrupt_docx(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match=r"broken\.docx.*not a valid \.docx"):
        extract("broken.docx", _random_bytes(20_000))

    real = helpers.make_docx(
        tmp_path / "real.docx", heading="H", paragraphs=["Body text here."]
    ).read_bytes()
    with pytest.raises(ExtractionError, match=r"truncated\.docx.*corrupt or truncated"):
        extract("truncated.docx", real[: len(real) // 2])

    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    with pytest.raises(ExtractionError, match=r"word/document\.xml is missing"):
        extract("renamed.docx", other_zip.read_bytes())

    # -- a zip with the right part names but garbage XML inside --
    bad_xml = tmp_path / "bad.docx"
    with zipfile.ZipFile(bad_xml, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types")
        zf.writestr("word/document.xml", "<<<not xml")
    with pytest.raises(ExtractionError, match=r"bad\.docx"):
        extract("bad.docx", bad_xml.read_bytes())

    with pytest.raises(ExtractionError, match="password-protected or legacy"):
        extract("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _random_bytes(4000))


@pytest.mark.timeout(60)
def test_corrupt_pptx() -> None:
    with pytest.raises(ExtractionError, match=r"broken\.pptx"):
        extract("broken.pptx", b"PK\x03\x04" + _random_bytes(5000))


@pytest.mark.parametrize("ext", sorted(SUPPORTED_EXTENSIONS))
@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n"], ids=["zero-bytes", "whitespace"])
def test_empty_file(ext: str, data: bytes) -> None:
    with pytest.raises(ExtractionError, match="empty"):
        extract(f"empty{ext}", data)


@pytest.mark.parametrize(
    "name, content",
    [
        ("blank.html", "<html><body>   </body></html>"),
        ("blank.md", "---\ntitle: Only front matter\n---\n"),
        ("blank.vtt", "WEBVTT\n\nNOTE nothing said\n"),
        ("blank.csv", ",,\n,,\n"),
    ],
)
def test_no_text_content(name: str, content: str) -> None:
    with pytest.raises(ExtractionError, match="no extractable text"):
        extract(name, content.encode())


@pytest.mark.parametrize("name", ["picture.png", "setup.exe", "archive.tar.gz", "README", "x.doc"])
def test_unsupported_type(name: str) -> None:
    with pytest.raises(ExtractionError, match="unsupported file type") as info:
        extract(name, b"some bytes")
    assert name in str(info.value)
    assert ".pdf" in str(info.value)  # -- tells the user what is supported --


def test_extension_is_case_insensitive_and_path_is_ignored() -> None:
    result = extract("/some/dir/NOTES.TXT", b"Upper-case extension works fine.")
    assert result.text == "Upper-case extension works fine."


@pytest.mark.parametrize("name", ["photo.txt", "photo.md", "photo.html", "photo.csv"])
def test_binary_content_in_text_type(name: str) -> None:
    png = b"\x89PNG\r\n\x1a\n" + _random_bytes(2000)
    with pytest.raises(ExtractionError, match="PNG image, not text"):
        extract(name, png)
    with pytest.raises(ExtractionError, match="binary"):
        extract(name, b"abc\x00\x01\x02def" * 100)
