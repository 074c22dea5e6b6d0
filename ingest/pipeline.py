"""Ingest = load a source into the mirror and post store, then bring the index in line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bulk import BulkLoader, LoadReport
from .chunking import Chunker
from .files.limits import Limits
from .indexer import Indexer, IndexReport


@dataclass
class IngestReport:
    load: LoadReport
    index: IndexReport


def make_chunker(runtime) -> Chunker:
    import langchain_text_splitters  # noqa: F401 - imported now, not on the first long message

    embedder = runtime.embedder
    count = embedder.count_tokens
    count_many = embedder.count_many

    s = runtime.settings
    return Chunker(count, max_tokens=min(s.chunk_tokens, runtime.embedder.max_tokens - 8),
                   overlap=s.chunk_overlap_messages, window_gap_ms=s.window_gap_minutes * 60_000,
                   count_many=count_many)


def make_indexer(runtime) -> Indexer:
    """The indexer, with the watch matcher listening to what it writes."""
    return Indexer(runtime.db, runtime.index, runtime.embedder, make_chunker(runtime),
                   listeners=[runtime.watches.on_indexed])


def ingest_path(
    runtime,
    path: str | Path,
    *,
    on_load: Callable[[LoadReport], None] | None = None,
    on_index: Callable[[IndexReport, int], None] | None = None,
) -> IngestReport:
    load = BulkLoader(runtime.db, on_line=on_load,
                      limits=Limits.from_settings(runtime.settings)).load(path)
    index = make_indexer(runtime).run(progress=on_index)
    return IngestReport(load, index)
