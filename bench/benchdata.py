"""Real conversational text for the benchmarks, read from ``/work/shared/datasets``.

Two sources, both plain turn sequences:

* LiveChat (Gitter): 749 hand-disentangled developer help dialogues, 8 rooms, ~7.3k messages.
  Each dialogue is a natural thread: the first message is usually the question.
* QMSum (train split): 162 meeting transcripts, ~88k turns. Annotation tags such as
  ``{vocalsound}`` are removed; turns left without any letters are dropped.

Both benchmarks import this module (it sits next to them, so ``python bench/<name>.py`` finds it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# shared/ lies beside the checkout (as in CI); OPENOPS_BENCH_DATASETS overrides
DATASETS = Path(os.environ.get(
    "OPENOPS_BENCH_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))

_CHAT_LINE = re.compile(
    r"^(?:\d+\s+)?\[(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)\]\s+<([^>]+)>\s?(.*)$"
)
_SEPARATOR = re.compile(r"^-{10,}\s*$")
_TAG = re.compile(r"\{[a-z_]+\}")
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    ts_ms: int  # real time for chat; synthetic (20 s per turn) for meetings


@dataclass(frozen=True)
class Source:
    """One dialogue or one meeting: the unit that should stay inside one channel."""

    name: str  # e.g. "gitter/docker/17" or "qmsum/ES2002a"
    kind: str  # "chat" | "meeting"
    room: str  # Gitter room or QMSum domain prefix
    turns: tuple[Turn, ...]


def _chat_ts(day: str, clock: str) -> int:
    dt = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _chat_dialogs(lines: list[str]) -> list[list[Turn]]:
    """Split a LiveChat file into dialogues; lines that are not messages continue the last one."""
    dialogs: list[list[Turn]] = [[]]
    for raw in lines:
        if _SEPARATOR.match(raw):
            dialogs.append([])
            continue
        dialog = dialogs[-1]
        m = _CHAT_LINE.match(raw)
        if m:
            text = _SPACES.sub(" ", m.group(4)).strip()
            if text:
                dialog.append(Turn(m.group(3).strip(), text, _chat_ts(m.group(1), m.group(2))))
        elif raw.strip() and dialog:
            last = dialog[-1]
            dialog[-1] = Turn(last.speaker, f"{last.text} {raw.strip()}", last.ts_ms)
    return [d for d in dialogs if d]


def load_livechat(root: Path | None = None) -> list[Source]:
    """Gitter dialogues, room by room, in file order."""
    base = (root or DATASETS) / "livechat-gitter" / "data" / "manual"
    sources: list[Source] = []
    for path in sorted(base.glob("*.txt")):
        room = path.stem.lower()
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, dialog in enumerate(_chat_dialogs(text.splitlines())):
            sources.append(Source(f"gitter/{room}/{n}", "chat", room, tuple(dialog)))
    return sources


def clean_meeting_turn(text: str) -> str:
    text = _SPACES.sub(" ", _TAG.sub(" ", text)).strip()
    return text if _LETTER.search(text) else ""


def load_qmsum(root: Path | None = None) -> list[Source]:
    """QMSum training meetings, in file-name order, tags removed, empty turns dropped."""
    base = (root or DATASETS) / "qmsum-train" / "data" / "train"
    sources: list[Source] = []
    start = _chat_ts("2024-01-08", "09:00:00")
    for n, path in enumerate(sorted(base.glob("*.json"))):
        data = json.loads(path.read_text(encoding="utf-8"))
        t0 = start + n * 86_400_000
        turns = []
        for i, t in enumerate(data.get("meeting_transcripts") or []):
            text = clean_meeting_turn(str(t.get("content") or ""))
            if text:
                turns.append(Turn(str(t.get("speaker") or "Speaker"), text, t0 + i * 20_000))
        if turns:
            domain = re.sub(r"[\d_].*$", "", path.stem).lower() or "meeting"
            sources.append(Source(f"qmsum/{path.stem}", "meeting", domain, tuple(turns)))
    return sources


def load_all() -> list[Source]:
    return load_livechat() + load_qmsum()


def format_turns(turns: tuple[Turn, ...] | list[Turn]) -> str:
    """A window of turns as chunk-like text: one ``speaker: text`` line per turn."""
    return "\n".join(f"{t.speaker}: {t.text}" for t in turns)
