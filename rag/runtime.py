"""The composition root: settings -> database -> index -> embedder -> services.

Built once by the CLI or the server and handed to whoever needs it; nothing is global.
The embedder and Chroma are created on first use, so commands that need neither start fast."""

from __future__ import annotations

import os
import threading
from functools import cached_property

from .db import Database, open_database
from .settings import Settings


def offline_environment() -> None:
    """Keep every library we use from phoning home or fetching models at run time."""
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "UNSTRUCTURED_DISABLE_NOTICE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(key, value)


class Runtime:
    def __init__(self, settings: Settings | None = None):
        offline_environment()
        self.settings = settings or Settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> Database:
        return open_database(self.settings.resolved_database_url)

    @cached_property
    def chroma(self):
        from .index import open_chroma

        return open_chroma(self.settings.chroma_url, str(self.settings.chroma_path))

    @cached_property
    def index(self):
        from .index import ChunkIndex

        return ChunkIndex(
            self.chroma,
            self.settings.collection,
            exact_scope_max_chunks=self.settings.exact_scope_max_chunks,
            cache_max_chunks=self.settings.scope_cache_max_chunks,
            ef_search=self.settings.hnsw_ef_search,
        )

    @cached_property
    def embedder(self):
        from .embeddings import Embedder

        with self._lock:
            return Embedder(
                self.settings.embedding_model,
                dtype=self.settings.embedding_dtype,
                batch_size=self.settings.embedding_batch_size,
                query_encoder=self.settings.query_encoder,
            )

    @cached_property
    def search(self):
        from .search import SearchService

        return SearchService(self.settings, self.db, self.index, lambda: self.embedder)

    @cached_property
    def generator(self):
        """The configured language model, or None for the extractive mode."""
        spec = self.settings.llm.strip()
        if spec in ("", "extractive"):
            return None
        from .llm.factory import make_generator

        s = self.settings
        return make_generator(spec, base_url=s.llm_base_url, api_key=s.llm_api_key,
                              timeout_s=s.llm_timeout_s, max_retries=s.llm_max_retries,
                              azure_endpoint=s.azure_openai_endpoint,
                              azure_api_version=s.azure_openai_api_version,
                              context_tokens=s.llm_context_tokens,
                              connect_timeout_s=s.llm_connect_timeout_s)

    @cached_property
    def metrics(self):
        from .metrics import Metrics

        def size() -> float:
            try:
                return float(self.index.count())
            except Exception:  # noqa: BLE001 - a scrape must not fail on a busy index
                return float("nan")

        return Metrics(size)

    @cached_property
    def conversations(self):
        from .conversations import Conversations

        return Conversations(self.db)

    @cached_property
    def records(self):
        from .records import Records

        return Records(self.settings, self.db)

    @cached_property
    def asker(self):
        from .ask import Asker

        return Asker(self.settings, self.db, self.search, self.generator,
                     conversations=self.conversations, records=self.records,
                     metrics=self.metrics)

    @cached_property
    def summaries(self):
        from .summaries import Summaries

        return Summaries(self.settings, self.db, self.search, self.generator,
                         conversations=self.conversations, records=self.records,
                         profiles=self.profiles)

    @cached_property
    def profiles(self):
        from .profile import Profiles

        return Profiles(self.settings, self.db, lambda: self.embedder, lambda: self.index)

    @cached_property
    def watches(self):
        from .watches import Watches

        return Watches(self.settings, self.db, lambda: self.embedder, lambda: self.index)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
