"""What asking and summarising share: the event stream they yield, the language model (or the
extractive mode) behind the output guard, and the asker's scope at the moment of asking."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .db import User
from .errors import OpenOpsError
from .extractive import Extractive
from .guard import StreamGuard
from .llm.base import ChatMessage, Generation, Generator
from .permissions import Scope, user_and_scope
from .records import Source

ANSWER_RESERVE = 1024  # tokens kept free for the model's answer


@dataclass
class Event:
    type: str  # token | sources | done | error
    data: Any


async def collect(events: AsyncIterator[Event]) -> tuple[str, list[dict], dict]:
    """Join an event stream into (text, sources, done); an ``error`` event is raised."""
    parts: list[str] = []
    sources: list[dict] = []
    done: dict = {}
    async for ev in events:
        if ev.type == "token":
            parts.append(ev.data)
        elif ev.type == "sources":
            sources = ev.data
        elif ev.type == "done":
            done = ev.data
        elif ev.type == "error":
            from .llm.base import ProviderError

            raise ProviderError(ev.data["error"], status=ev.data.get("status", 502))
    return "".join(parts), sources, done


def failure(exc: OpenOpsError) -> Event:
    """The ``error`` event that ends a stream the model (or anything after the first event)
    broke."""
    return Event("error", {"error": str(exc), "status": getattr(exc, "status", 502)})


def cited(text: str, sources: list[Source]) -> list[Source]:
    """The sources the text cites as ``[n]``; all of them when it cites none."""
    nums = {int(n) for n in re.findall(r"\[(\d{1,3})\]", text)}
    out = [s for s in sources if s.n in nums]
    return out or sources  # no citation in the text: show what the answer was drawn from


def tokens(text: str) -> int:
    """Tokens a text costs the language model, estimated from its length (3 characters a
    token: above what English takes in GPT-style tokenizers, so the budget holds). The
    embedding model's tokenizer is not the language model's either, and counting with it
    cost more CPU than anything else before the first token."""
    return len(text) // 3 + 1


def words(text: str) -> list[str]:
    """A text as the pieces the extractive mode streams."""
    return re.findall(r"\S+\s*|\s+", text)


class Writer:
    """The part of a service that writes text grounded in sources: the language model (None:
    the extractive mode) through the output guard."""

    def __init__(self, settings, db, search, generator: Generator | None,
                 extractive: Extractive | None = None):
        self.settings = settings
        self.db = db
        self.search = search
        self.generator = generator  # None: the extractive mode
        self._extractive = extractive

    @property
    def extractive(self) -> Extractive:
        if self._extractive is None:
            self._extractive = Extractive(self.search.embedder)
        return self._extractive

    @property
    def model_name(self) -> str:
        return self.generator.name if self.generator else "extractive"

    def user_scope(self, who: str) -> tuple[User, Scope]:
        return user_and_scope(self.db, who, include_archived=self.settings.include_archived)

    async def guarded(self, msgs: list[ChatMessage], gen: Generation,
                      allowed: set[str]) -> AsyncIterator[str]:
        """The model's stream through the output guard (no images, HTML or foreign links)."""
        assert self.generator is not None
        guard = StreamGuard(allowed)
        async for delta in self.generator.astream(msgs, gen):
            out = guard.feed(delta)
            if out:
                yield out
        tail = guard.flush()
        if tail:
            yield tail
