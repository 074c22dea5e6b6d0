"""WebVTT meeting transcripts (.vtt): an own parser, one ``[HH:MM:SS] Speaker: text`` line per
(merged) cue."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from .common import Cue, Extracted, ExtractionError, clean_inline, decode_text
from .limits import Budget

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
    return clean_inline(html.unescape(chunk))


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


def read_vtt(name: str, data: bytes, budget: Budget) -> Extracted:
    source = decode_text(name, data)
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

