"""The generator interface every provider implements: small on purpose (like simonw/llm)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from rag.errors import OpenOpsError


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass
class Generation:
    """Filled in while a generation runs; read it after the stream ends."""

    text: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str = ""
    first_token_s: float | None = None  # seconds from the call to the first token
    extra: dict = field(default_factory=dict)


class ProviderError(OpenOpsError):
    """The provider failed; the message says what the user or admin can do about it."""

    status = 502

    def __init__(self, message: str, *, status: int = 502, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class Generator:
    """A chat model. Implement ``astream``; ``acomplete`` joins the stream by default."""

    name: str = "generator"  # e.g. "openai:gpt-4o-mini"
    can_stream: bool = True
    context_tokens: int = 8192  # the budget for prompt + answer

    async def astream(self, messages: list[ChatMessage], gen: Generation) -> AsyncIterator[str]:
        """Yield text deltas; fill ``gen`` (text, tokens, first_token_s) as they come."""
        raise NotImplementedError
        yield ""  # pragma: no cover

    def prepare(self) -> None:
        """Load what the first question would otherwise load (client libraries, their lazily
        built types), outside any event loop. ``openops serve`` calls it while warming up."""

    async def acomplete(self, messages: list[ChatMessage], gen: Generation | None = None) -> str:
        gen = gen or Generation()
        async for _ in self.astream(messages, gen):
            pass
        return gen.text
