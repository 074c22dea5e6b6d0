"""Asking: an answer grounded in what the asking user may read, cited, streamed.

Every question re-computes the user's scope at the moment of asking and retrieves only through
``SearchService.retrieve``; a conversation started by someone else (a shared summary) lends its
history and sources only when the asker may read every channel it used (see conversations)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import select

from .conversations import Conversations
from .db import Conversation, ConversationMessage, Post, User
from .errors import InvalidRequest, OpenOpsError
from .extractive import Extractive
from .generation import ANSWER_RESERVE, Event, Writer, cited, collect, failure, tokens, words
from .guard import guard_markdown
from .index import Hit
from .llm.base import ChatMessage, Generation, Generator
from .permissions import Scope, narrow
from .prompts import CONDENSE, SYSTEM, fence, language_rule
from .records import Records, Source
from .search import SearchService
from .util import fmt_ms, now_ms


@dataclass
class AskResult:
    answer: str
    sources: list[dict]
    conversation_id: str
    answer_id: str
    model: str
    scope_channels: int
    extra: dict = field(default_factory=dict)


class Asker(Writer):
    def __init__(self, settings, db, search: SearchService, generator: Generator | None, *,
                 conversations: Conversations | None = None, records: Records | None = None,
                 extractive: Extractive | None = None, metrics=None):
        super().__init__(settings, db, search, generator, extractive)
        self.conversations = conversations or Conversations(db)
        self.records = records or Records(settings, db)
        self.metrics = metrics

    async def events(self, who: str, question: str, conversation_id: str | None = None,
                     *, audience: Scope | None = None,
                     context: list[tuple[str, str]] | None = None,
                     actor: str | None = None) -> AsyncIterator[Event]:
        """``audience``: narrow retrieval to what every reader of the place the answer goes
        may read (the bot's replies in channels); ``context``: earlier turns of a chat thread,
        ``(role, text)``, used as history before the conversation's own; ``actor``: who acts
        (the service key or the signed-in person), for the audit log."""
        t0 = time.perf_counter()
        if not question or not question.strip():
            raise InvalidRequest("question: must not be empty")
        # blocking work (database, index, embedding) runs in worker threads, so concurrent
        # requests overlap instead of queueing behind one another on the event loop
        user, scope, conv, history, shared_ok = await asyncio.to_thread(
            self._start, who, conversation_id, audience)
        if context:
            history = [*(ConversationMessage(role=r, content=c) for r, c in context), *history]
        standalone = await self._condense(question, history)
        sources = await asyncio.to_thread(self._retrieve_sources, scope, conv, question,
                                          standalone, history)
        answer_id = uuid.uuid4().hex
        conv_id = None
        if conv is not None and shared_ok:
            # someone else's conversation is never written to: the asker continues in a copy
            conv_id = conv.id if conv.user_id == user.id else await asyncio.to_thread(
                self.conversations.fork, conv, user, history)
        gen = Generation(model=self.model_name)
        allowed = {s.permalink for s in sources if s.permalink}
        text_parts: list[str] = []
        first_token: float | None = None
        try:
            async for delta in self._generate(question, standalone, history, sources, gen,
                                               allowed, locale=user.locale):
                if first_token is None and delta:
                    first_token = time.perf_counter() - t0
                    if self.metrics:
                        self.metrics.ttft.observe(first_token)
                text_parts.append(delta)
                yield Event("token", delta)
        except OpenOpsError as exc:
            yield failure(exc)
            return
        text = "".join(text_parts)
        cites = cited(text, sources)
        conv_id = await asyncio.to_thread(self._save, conv_id, user, question, text, cites,
                                          sources, answer_id)
        yield Event("sources", [s.public() for s in cites])
        latency = (time.perf_counter() - t0) * 1000
        await asyncio.to_thread(
            self.records.audit_generation, user_id=user.id, action="ask", question=question,
            sources=sources, cited=cites, actor=actor, input_tokens=gen.input_tokens,
            output_tokens=gen.output_tokens, latency_ms=latency, answer_text=text,
            answer_id=answer_id, model=self.model_name)
        yield Event("done", {"answer_id": answer_id, "conversation_id": conv_id,
                             "model": self.model_name, "scope_channels": len(scope.channels),
                             "input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens,
                             "latency_ms": round(latency, 1)})

    async def ask(self, who: str, question: str, conversation_id: str | None = None, *,
                  actor: str | None = None) -> AskResult:
        text, sources, done = await collect(self.events(who, question, conversation_id,
                                                        actor=actor))
        return AskResult(text, sources, done["conversation_id"], done["answer_id"],
                         done["model"], done["scope_channels"], done)

    def beyond(self, who: str, question: str, audience: Scope, *, min_score: float = 0.3,
               margin: float = 0.05) -> bool:
        """Whether the asker's own scope holds content the audience may not read that answers
        the question at least about as well as what the audience may read: one of the top
        three hits of the asker's full scope is outside the audience, relevant in itself
        (cosine >= ``min_score``) and within ``margin`` of the best hit inside it. (Then the
        bot says so in the thread and answers fully in private.)"""
        _, scope = self.user_scope(who)
        if scope.channel_ids <= audience.channel_ids:
            return False
        hits = self.search.retrieve(scope, question, self.settings.answer_sources)
        inside = max((h.score for h in hits
                      if audience.allows(str(h.metadata.get("channel_id")))), default=0.0)
        return any(not audience.allows(str(h.metadata.get("channel_id")))
                   and h.score >= max(min_score, inside - margin) for h in hits[:3])

    # ---- the steps of an answer -----------------------------------------------------------
    def _start(self, who: str, conversation_id: str | None, audience: Scope | None):
        """The asker, the scope of the reply (narrowed to the audience where one reads it) and
        what of the conversation the reply may use: its history is gated by the scope the
        reply uses, not by the asker's wider one."""
        user, scope = self.user_scope(who)
        reply_scope = scope if audience is None else narrow(scope, audience)
        conv, history, shared_ok = self.conversations.gate(conversation_id, user, scope,
                                                           reply_scope)
        return user, reply_scope, conv, history, shared_ok

    async def _condense(self, question: str, history: list[ConversationMessage]) -> str:
        if not history:
            return question
        last_user = [m.content for m in history if m.role == "user"][-2:]
        if self.generator is None:
            return " ".join([*last_user, question])
        msgs = [ChatMessage("system", CONDENSE)]
        for m in history[-6:]:
            msgs.append(ChatMessage("user" if m.role == "user" else "assistant", m.content[:2000]))
        msgs.append(ChatMessage("user", question))
        try:
            out = (await self.generator.acomplete(msgs)).strip()
        except OpenOpsError:
            return " ".join([*last_user, question])
        return out or question

    def _retrieve_sources(self, scope: Scope, conv: Conversation | None, question: str,
                          standalone: str, history) -> list[Source]:
        k = self.settings.answer_sources
        hits: list[Hit] = []
        if conv is not None and conv.kind == "summary":
            hits = self._summary_hits(conv, scope, standalone, k)
        if not scope.empty:
            seen = {h.id for h in hits}
            hits += [h for h in self.search.retrieve(scope, standalone, k) if h.id not in seen]
        hits = [h for h in hits if scope.allows(str(h.metadata.get("channel_id")))][: k + 4]
        if self.generator is not None:
            hits = self._whole_threads(hits, scope)
        return self._budget(self._sources(hits), question, history)

    def _summary_hits(self, conv: Conversation, scope: Scope, query: str, k: int) -> list[Hit]:
        """Chunks of the summary's source posts that the asker may read, most relevant first."""
        post_ids = set(json.loads(conv.source_post_ids or "[]"))
        params = json.loads(conv.params or "{}")
        own = params.get("channels", json.loads(conv.channel_ids or "[]"))
        channels = [c for c in own if scope.allows(c)]
        if not channels or not post_ids:
            return []
        own_scope = Scope(user_id=scope.user_id,
                          channels={c: scope.channels[c] for c in channels})
        return self.search.index.search_posts(self.search.embedder.encode_query(query),
                                              own_scope, post_ids, k)

    def _whole_threads(self, hits: list[Hit], scope: Scope, threads: int = 3) -> list[Hit]:
        """Bring the other chunks of the best threads next to them, so the model reads a
        thread whole where the budget allows (``_budget`` drops what does not fit). At most
        one index read for all of them, none for threads read before at the same index
        version: it is on the path to the first token."""
        picked: list[tuple[str, str]] = []
        for h in hits:
            thread, channel = h.metadata.get("thread_id"), h.metadata.get("channel_id")
            if (thread and h.metadata.get("source") == "message" and scope.allows(str(channel))
                    and (thread, channel) not in picked):
                picked.append((str(thread), str(channel)))
            if len(picked) >= threads:
                break
        if not picked:
            return hits
        seen = {h.id for h in hits}
        by_thread = {key: [h for h in chunks if h.id not in seen]
                     for key, chunks in self.search.index.thread_chunks(picked, scope).items()}
        out: list[Hit] = []
        done: set[tuple[str, str]] = set()
        for h in hits:
            out.append(h)
            key = (str(h.metadata.get("thread_id")), str(h.metadata.get("channel_id")))
            if key in by_thread and key not in done:
                done.add(key)
                for sib in by_thread[key][:6]:
                    if sib.id not in seen:
                        seen.add(sib.id)
                        out.append(Hit(sib.id, h.score, sib.text, sib.metadata))
        return out

    def _sources(self, hits: list[Hit]) -> list[Source]:
        presented = self.search.present(hits)
        post_ids = {r.post_id for r in presented}
        with self.db.session() as s:
            posts = {pid: (at, u.display_name if u else "") for pid, at, u in s.execute(
                select(Post.id, Post.create_at, User)
                .outerjoin(User, User.id == Post.user_id).where(Post.id.in_(post_ids)))}
        out = []
        for i, (h, r) in enumerate(zip(hits, presented), 1):
            at, name = posts.get(r.post_id, (None, None))
            out.append(Source(
                n=i, chunk_id=h.id, post_id=r.post_id, thread_id=r.thread_id,
                channel_id=r.channel_id, channel_name=r.channel_name, team_name=r.team_name,
                channel_type=r.channel_type, author=name or "",
                created_at=(at if at is not None else r.first_ts), permalink=r.permalink,
                source=r.source, file_name=r.file_name, text=h.text))
        return out

    def _budget(self, sources: list[Source], question: str, history) -> list[Source]:
        """Most relevant first, within the model's context budget; renumbered 1..n."""
        if self.generator is None:
            budget = 10**9
        else:
            budget = (self.settings.llm_context_tokens - ANSWER_RESERVE
                      - tokens(SYSTEM) - tokens(question)
                      - sum(tokens(m.content) for m in history[-6:]))
        kept: list[Source] = []
        used = 0
        for s in sources:
            cost = tokens(s.text) + 24
            if used + cost > budget:
                continue
            kept.append(s)
            used += cost
        for i, s in enumerate(kept, 1):
            s.n = i
        return kept

    async def _generate(self, question: str, standalone: str, history, sources: list[Source],
                        gen: Generation, allowed: set[str], *, locale: str = ""
                        ) -> AsyncIterator[str]:
        if not sources:
            msg = ("I found nothing you have access to that answers this. "
                   "Try other words, or ask in the channel that would know.")
            gen.text = msg
            yield msg
            return
        if self.generator is None:
            picked = self.extractive.answer(standalone, [s.text for s in sources])
            lines = [self.extractive.notice, ""]
            for sent in picked:
                who = f"{sent.author}: " if sent.author else ""
                lines.append(f"- {who}{sent.text} [{sources[sent.source].n}]")
            text = guard_markdown("\n".join(lines), allowed)  # quoted sources, guarded too
            gen.text = text
            for piece in words(text):
                yield piece
            return
        # the reader's language: the question's, else their Mattermost locale
        msgs = [ChatMessage("system", SYSTEM + "\n" + language_rule(locale))]
        for m in history[-6:]:
            msgs.append(ChatMessage("user" if m.role == "user" else "assistant", m.content[:2000]))
        context = "\n\n".join(
            fence(s.n, f'channel="{s.channel_name}" author="{s.author}" '
                       f'time="{fmt_ms(s.created_at)}"', s.text) for s in sources)
        msgs.append(ChatMessage("user", f"Sources:\n{context}\n\nQuestion: {question}"))
        async for out in self.guarded(msgs, gen, allowed):
            yield out

    def _save(self, conv_id: str | None, user: User, question: str, text: str,
              cites: list[Source], given: list[Source], answer_id: str) -> str:
        t = now_ms()
        with self.db.session() as s:
            conv_id = self.conversations.add_turn(
                s, conv_id, user, question, text, {c.channel_id for c in given if c.channel_id},
                answer_id, t)
            self.records.add_answer(s, answer_id=answer_id, conversation_id=conv_id,
                                    user_id=user.id, question=question, text=text,
                                    model=self.model_name, created_at=t, sources=cites)
            s.commit()
        return conv_id
