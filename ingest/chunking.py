"""Thread-aware chunking of chat, and splitting of files.

* A thread (a root post with replies) becomes chunks of consecutive messages.
* Root posts without replies are grouped into conversation windows: consecutive posts of the
  channel until a pause longer than ``window_gap`` or the size budget.
* Each line is prefixed with its author and time; a chunk starts with a one-line header naming
  the channel, so that questions naming a channel or a person find it.
* Consecutive chunks of a unit overlap by ``overlap`` messages. A message longer than the budget
  is split with LangChain's token-aware recursive splitter, each piece keeping its prefix.
* Chunk ids derive from the unit (thread root, window's first post, file) and the position in
  it, so re-chunking the same content yields the same ids, and a content hash tells what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Message:
    id: str
    root_id: str
    user_id: str
    author: str  # "Maria Gonzalez (@maria.gonzalez)"
    create_at: int
    text: str


@dataclass(frozen=True)
class FileDoc:
    id: str
    post_id: str
    thread_id: str
    user_id: str
    author: str
    create_at: int
    name: str
    kind: str  # file | transcript
    text: str


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    team_id: str
    type: str
    name: str
    display_name: str
    team_name: str = ""


@dataclass
class Chunk:
    id: str
    text: str
    metadata: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return str(self.metadata.get("hash", ""))


def stable_id(*parts: str, length: int = 32) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:length]


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class Chunker:
    def __init__(
        self,
        count_tokens: TokenCounter,
        *,
        max_tokens: int = 200,
        overlap: int = 1,
        window_gap_ms: int = 30 * 60 * 1000,
        count_many: Callable[[list[str]], list[int]] | None = None,
    ):
        self.count_tokens = count_tokens
        self.count_many = count_many or (lambda texts: [count_tokens(t) for t in texts])
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.window_gap_ms = window_gap_ms
        self._splitter = None

    # ---- helpers --------------------------------------------------------------------------
    def _split_long(self, text: str, budget: int) -> list[str]:
        if self._splitter is None or self._splitter._chunk_size != budget:
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=budget,
                chunk_overlap=max(0, budget // 8),
                length_function=self.count_tokens,
                separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            )
        return [p for p in self._splitter.split_text(text) if p.strip()]

    @staticmethod
    def _header(ch: ChannelInfo) -> str:
        if ch.type in ("D", "G"):
            kind = "Direct message" if ch.type == "D" else "Group message"
            return f"{kind} {ch.display_name or ch.name}"
        team = f" ({ch.team_name})" if ch.team_name else ""
        return f"Channel ~{ch.name} {ch.display_name}{team}".rstrip()

    def _meta(
        self, ch: ChannelInfo, thread_id: str, msgs: Sequence[Message], source: str, text: str,
        file_name: str = "",
    ) -> dict:
        authors = list(dict.fromkeys(m.user_id for m in msgs))
        post_ids = list(dict.fromkeys(m.id for m in msgs))
        return {
            "team_id": ch.team_id or "",
            "channel_id": ch.id,
            "channel_type": ch.type,
            "thread_id": thread_id,
            "post_id": post_ids[0] if post_ids else "",
            "post_ids": ",".join(post_ids),
            "author_ids": ",".join(authors),
            "first_ts": min(m.create_at for m in msgs),
            "last_ts": max(m.create_at for m in msgs),
            "source": source,
            "file_name": file_name,
            "hash": stable_id(text, ch.id, ch.team_id or "", ch.type, ",".join(post_ids), source),
        }

    def _pack(
        self, ch: ChannelInfo, unit_key: str, thread_id: str, msgs: Sequence[Message]
    ) -> list[Chunk]:
        header = self._header(ch)
        budget = self.max_tokens - self.count_tokens(header) - 2
        lines: list[tuple[Message, str, int]] = []
        prefixes = [f"{m.author} {fmt_time(m.create_at)}: " for m in msgs]
        counts = self.count_many([p + m.text for p, m in zip(prefixes, msgs)])
        for m, prefix, n in zip(msgs, prefixes, counts):
            line = prefix + m.text
            if n <= budget:
                lines.append((m, line, n))
                continue
            for piece in self._split_long(m.text, max(16, budget - self.count_tokens(prefix))):
                lines.append((m, prefix + piece, self.count_tokens(prefix + piece)))
        chunks: list[Chunk] = []
        start = 0
        while start < len(lines):
            end = start
            used = 0
            while end < len(lines) and (end == start or used + lines[end][2] <= budget):
                used += lines[end][2]
                end += 1
            part = lines[start:end]
            text = header + "\n" + "\n".join(line for _, line, _ in part)
            pos = len(chunks)
            meta = self._meta(ch, thread_id, [m for m, _, _ in part], "message", text)
            chunks.append(Chunk(id=stable_id(unit_key, str(pos)), text=text, metadata=meta))
            if end >= len(lines):
                break
            # overlap: the next chunk repeats the last messages, if they leave room for new ones
            back = max(start + 1, end - self.overlap)
            if sum(n for _, _, n in lines[back:end]) <= budget // 2:
                start = back
            else:
                start = end
        return chunks

    # ---- public ---------------------------------------------------------------------------
    def chunk_channel(
        self, ch: ChannelInfo, posts: Sequence[Message], files: Sequence[FileDoc] = ()
    ) -> list[Chunk]:
        """All chunks of one channel from its live (not deleted) posts and files."""
        posts = sorted(posts, key=lambda m: (m.create_at, m.id))
        by_root: dict[str, list[Message]] = {}
        roots: list[Message] = []
        for m in posts:
            if m.root_id:
                by_root.setdefault(m.root_id, []).append(m)
            else:
                roots.append(m)
        root_ids = {r.id for r in roots}
        chunks: list[Chunk] = []
        window: list[Message] = []

        def flush() -> None:
            if window:
                key = f"window:{ch.id}:{window[0].id}"
                chunks.extend(self._pack(ch, key, window[0].id, window))
                window.clear()

        for root in roots:
            replies = by_root.get(root.id)
            if replies:
                chunks.extend(self._pack(ch, f"thread:{root.id}", root.id, [root, *replies]))
                continue
            if window and root.create_at - window[-1].create_at > self.window_gap_ms:
                flush()
            window.append(root)
        flush()
        # replies whose root is unknown (partial data): keep them as their own thread
        for root_id, replies in by_root.items():
            if root_id not in root_ids:
                chunks.extend(self._pack(ch, f"thread:{root_id}", root_id, replies))
        for f in files:
            chunks.extend(self.chunk_file(ch, f))
        return chunks

    def chunk_file(self, ch: ChannelInfo, f: FileDoc) -> list[Chunk]:
        header = (
            f"{self._header(ch)}\n{'Transcript' if f.kind == 'transcript' else 'File'} {f.name}, "
            f"shared by {f.author} {fmt_time(f.create_at)}"
        )
        budget = max(32, self.max_tokens - self.count_tokens(header) - 2)
        pieces = self._split_long(f.text, budget)
        msg = Message(f.post_id, f.thread_id, f.user_id, f.author, f.create_at, "")
        out = []
        for pos, piece in enumerate(pieces):
            text = header + "\n" + piece
            meta = self._meta(ch, f.thread_id, [msg], f.kind, text, file_name=f.name)
            out.append(Chunk(id=stable_id(f"file:{f.id}", str(pos)), text=text, metadata=meta))
        return out
