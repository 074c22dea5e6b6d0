"""Ask and summarise: grounded in what the asking user may read, cited, streamed.

Every path re-computes the user's scope at the moment of asking and retrieves only through
``SearchService.retrieve``; a conversation started by someone else (a shared summary) lends its
history and sources only when the asker may read every channel it used."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from .db import (
    Answer,
    AuditRecord,
    Channel,
    Conversation,
    ConversationMessage,
    Feedback,
    File,
    Post,
    User,
)
from .errors import InvalidRequest, NotFound, OpenOpsError
from .extractive import Extractive, Sentence
from .guard import StreamGuard, guard_markdown
from .index import Hit
from .llm.base import ChatMessage, Generation, Generator
from .permissions import Scope, find_user, readable_scope
from .prompts import CONDENSE, SUMMARY_SYSTEM, SYSTEM, fence
from .search import SearchService, write_audit

ANSWER_RESERVE = 1024  # tokens kept free for the model's answer


def now_ms() -> int:
    return int(time.time() * 1000)


def fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Source:
    n: int
    chunk_id: str
    post_id: str
    thread_id: str
    channel_id: str
    channel_name: str
    team_name: str
    channel_type: str
    author: str
    created_at: int
    permalink: str | None
    source: str
    file_name: str | None
    text: str

    def public(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    type: str  # token | sources | done | error
    data: Any


@dataclass
class AskResult:
    answer: str
    sources: list[dict]
    conversation_id: str
    answer_id: str
    model: str
    scope_channels: int
    extra: dict = field(default_factory=dict)


class AnswerService:
    def __init__(self, settings, db, search: SearchService, generator: Generator | None,
                 extractive: Extractive | None = None, metrics=None):
        self.settings = settings
        self.db = db
        self.search = search
        self.generator = generator  # None: the extractive mode
        self._extractive = extractive
        self.metrics = metrics

    @property
    def extractive(self) -> Extractive:
        if self._extractive is None:
            self._extractive = Extractive(self.search.embedder)
        return self._extractive

    @property
    def model_name(self) -> str:
        return self.generator.name if self.generator else "extractive"

    # ---- helpers --------------------------------------------------------------------------
    def _user(self, who: str, s=None) -> User:
        if s is None:
            with self.db.session() as s:
                return self._user(who, s)
        u = find_user(s, who)
        if u is None:
            raise NotFound(f"unknown user {who!r}: give a username or user id the mirror knows")
        return u

    def _scope(self, user: User) -> Scope:
        return self.search.scope_for(user.id)

    def _tokens(self, text: str) -> int:
        """Tokens a text costs the language model, estimated from its length (3 characters a
        token: above what English takes in GPT-style tokenizers, so the budget holds). The
        embedding model's tokenizer is not the language model's either, and counting with it
        cost more CPU than anything else before the first token."""
        return len(text) // 3 + 1

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

    def _audit(self, *, user_id: str, action: str, question: str, sources: list[Source],
               gen: Generation | None, latency_ms: float, answer_text: str | None,
               answer_id: str | None, model: str) -> None:
        write_audit(self.db, user_id=user_id, action=action, question=question,
                    sources=sources, model=model,
                    input_tokens=gen.input_tokens if gen else None,
                    output_tokens=gen.output_tokens if gen else None, latency_ms=latency_ms,
                    answer_text=answer_text if self.settings.audit_answer_text else None,
                    answer_id=answer_id)

    def _conversation(self, conversation_id: str | None, user: User, scope: Scope
                      ) -> tuple[Conversation | None, list[ConversationMessage], bool]:
        """The conversation, its history, and whether the asker may use what it holds."""
        if not conversation_id:
            return None, [], True
        with self.db.session() as s:
            conv = s.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id!r} does not exist")
            history = list(s.scalars(select(ConversationMessage).where(
                ConversationMessage.conversation_id == conv.id).order_by(ConversationMessage.id)))
        used = set(json.loads(conv.channel_ids or "[]"))
        # the owner, or anyone who may read every channel it drew on (never an empty set:
        # an uploaded transcript's summary stays its uploader's)
        allowed = used <= scope.channel_ids and (conv.user_id == user.id or bool(used))
        return conv, (history if allowed else []), allowed

    # ---- ask ------------------------------------------------------------------------------
    async def ask_events(self, who: str, question: str, conversation_id: str | None = None,
                         *, audience: Scope | None = None,
                         context: list[tuple[str, str]] | None = None) -> AsyncIterator[Event]:
        """``audience``: narrow retrieval to what every reader of the place the answer goes
        may read (the bot's replies in channels); ``context``: earlier turns of a chat thread,
        ``(role, text)``, used as history before the conversation's own."""
        t0 = time.perf_counter()
        if not question or not question.strip():
            raise InvalidRequest("question: must not be empty")
        # blocking work (database, index, embedding) runs in worker threads, so concurrent
        # requests overlap instead of queueing behind one another on the event loop
        user, scope, conv, history, shared_ok = await asyncio.to_thread(
            self._start, who, conversation_id)
        if audience is not None:
            scope = narrow(scope, audience)
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
                self._fork, conv, user, history)
        gen = Generation(model=self.model_name)
        allowed = {s.permalink for s in sources if s.permalink}
        text_parts: list[str] = []
        first_token: float | None = None
        try:
            async for delta in self._generate(question, standalone, history, sources, gen,
                                               allowed):
                if first_token is None and delta:
                    first_token = time.perf_counter() - t0
                    if self.metrics:
                        self.metrics.ttft.observe(first_token)
                text_parts.append(delta)
                yield Event("token", delta)
        except OpenOpsError as exc:
            yield Event("error", {"error": str(exc), "status": getattr(exc, "status", 502)})
            return
        text = "".join(text_parts)
        cited = _cited(text, sources)
        conv_id = await asyncio.to_thread(self._save_ask, conv_id, user, question, text, cited,
                                          sources, answer_id)
        yield Event("sources", [s.public() for s in cited])
        latency = (time.perf_counter() - t0) * 1000
        await asyncio.to_thread(
            self._audit, user_id=user.id, action="ask", question=question, sources=cited,
            gen=gen, latency_ms=latency, answer_text=text, answer_id=answer_id,
            model=self.model_name)
        yield Event("done", {"answer_id": answer_id, "conversation_id": conv_id,
                             "model": self.model_name, "scope_channels": len(scope.channels),
                             "input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens,
                             "latency_ms": round(latency, 1)})

    def beyond(self, who: str, question: str, audience: Scope, *, min_score: float = 0.3,
               margin: float = 0.05) -> bool:
        """Whether the asker's own scope holds content the audience may not read that answers
        the question at least about as well as what the audience may read: one of the top
        three hits of the asker's full scope is outside the audience, relevant in itself
        (cosine >= ``min_score``) and within ``margin`` of the best hit inside it. (Then the
        bot says so in the thread and answers fully in private.)"""
        user = self._user(who)
        scope = self._scope(user)
        if scope.channel_ids <= audience.channel_ids:
            return False
        hits = self.search.retrieve(scope, question, self.settings.answer_sources)
        inside = max((h.score for h in hits
                      if audience.allows(str(h.metadata.get("channel_id")))), default=0.0)
        return any(not audience.allows(str(h.metadata.get("channel_id")))
                   and h.score >= max(min_score, inside - margin) for h in hits[:3])

    def _start(self, who: str, conversation_id: str | None):
        with self.db.session() as s:  # one session for the user and their scope: first-token path
            user = self._user(who, s)
            scope = readable_scope(s, user.id, include_archived=self.settings.include_archived)
        conv, history, shared_ok = self._conversation(conversation_id, user, scope)
        return user, scope, conv, history, shared_ok

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

    async def ask(self, who: str, question: str, conversation_id: str | None = None) -> AskResult:
        text, sources, done = await collect(self.ask_events(who, question, conversation_id))
        return AskResult(text, sources, done["conversation_id"], done["answer_id"],
                         done["model"], done["scope_channels"], done)

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

    def _budget(self, sources: list[Source], question: str, history) -> list[Source]:
        """Most relevant first, within the model's context budget; renumbered 1..n."""
        if self.generator is None:
            budget = 10**9
        else:
            budget = (self.settings.llm_context_tokens - ANSWER_RESERVE
                      - self._tokens(SYSTEM) - self._tokens(question)
                      - sum(self._tokens(m.content) for m in history[-6:]))
        kept: list[Source] = []
        used = 0
        for s in sources:
            cost = self._tokens(s.text) + 24
            if used + cost > budget:
                continue
            kept.append(s)
            used += cost
        for i, s in enumerate(kept, 1):
            s.n = i
        return kept

    async def _generate(self, question: str, standalone: str, history, sources: list[Source],
                        gen: Generation, allowed: set[str]) -> AsyncIterator[str]:
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
            for piece in re.findall(r"\S+\s*|\s+", text):
                yield piece
            return
        msgs = [ChatMessage("system", SYSTEM)]
        for m in history[-6:]:
            msgs.append(ChatMessage("user" if m.role == "user" else "assistant", m.content[:2000]))
        context = "\n\n".join(
            fence(s.n, f'channel="{s.channel_name}" author="{s.author}" '
                       f'time="{fmt_ms(s.created_at)}"', s.text) for s in sources)
        msgs.append(ChatMessage("user", f"Sources:\n{context}\n\nQuestion: {question}"))
        async for out in self._guarded(msgs, gen, allowed):
            yield out

    async def _guarded(self, msgs: list[ChatMessage], gen: Generation,
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

    def _fork(self, conv: Conversation, user: User, history: list[ConversationMessage]) -> str:
        fork_id = uuid.uuid4().hex
        with self.db.session() as s:
            s.add(Conversation(id=fork_id, user_id=user.id, kind=conv.kind, title=conv.title,
                               source_post_ids=conv.source_post_ids,
                               channel_ids=conv.channel_ids, params=conv.params,
                               created_at=now_ms()))
            for m in history:
                s.add(ConversationMessage(conversation_id=fork_id, role=m.role, content=m.content,
                                          answer_id=m.answer_id, created_at=m.created_at))
            s.commit()
        return fork_id

    def _save_ask(self, conv_id: str | None, user: User, question: str, text: str,
                  cited: list[Source], given: list[Source], answer_id: str) -> str:
        # every channel whose text reached the generator, cited or not: who may later see this
        # conversation's history is decided by it
        drawn = {c.channel_id for c in given if c.channel_id}
        with self.db.session() as s:
            if conv_id is None:
                conv = Conversation(id=uuid.uuid4().hex, user_id=user.id, kind="ask",
                                    title=question[:200], created_at=now_ms(),
                                    channel_ids=json.dumps(sorted(drawn)))
                s.add(conv)
                conv_id = conv.id
            else:
                conv = s.get(Conversation, conv_id)
                used = set(json.loads(conv.channel_ids or "[]")) | drawn
                conv.channel_ids = json.dumps(sorted(used))
            t = now_ms()
            s.add(ConversationMessage(conversation_id=conv_id, role="user", content=question,
                                      created_at=t))
            s.add(ConversationMessage(conversation_id=conv_id, role="assistant", content=text,
                                      answer_id=answer_id, created_at=t + 1))
            s.add(Answer(id=answer_id, conversation_id=conv_id, user_id=user.id,
                         question=question, text=text, model=self.model_name, created_at=t,
                         sources=json.dumps([c.public() for c in cited])))
            s.commit()
        return conv_id

    # ---- feedback -------------------------------------------------------------------------
    def feedback(self, who: str, answer_id: str, rating: str, comment: str = "") -> dict:
        if rating not in ("up", "down"):
            raise InvalidRequest("rating: must be 'up' or 'down'")
        user = self._user(who)
        scope = self._scope(user)
        with self.db.session() as s:
            answer = s.get(Answer, answer_id)
            drawn = {x.get("channel_id") for x in json.loads(answer.sources or "[]")
                     if x.get("channel_id")} if answer else set()
            # the asker, or anyone who may read everything the answer drew on (a reader of the
            # channel it was posted in); to anyone else the answer does not exist
            if answer is None or (answer.user_id != user.id and not drawn <= scope.channel_ids):
                raise NotFound(f"answer {answer_id!r} does not exist")
            fb = Feedback(answer_id=answer_id, user_id=user.id, rating=rating,
                          comment=comment or "", created_at=now_ms())
            s.add(fb)
            s.commit()
            return {"id": fb.id, "answer_id": answer_id, "rating": rating}

    # ---- summaries ------------------------------------------------------------------------
    def _summary_posts(self, user: User, scope: Scope, kind: str, *, thread_id: str | None,
                       channel_id: str | None, since: int | None, days: float | None,
                       file_id: str | None, transcript: str | None):
        """(title, channel ids, [(post_id, text)]) for what the user asked to summarise."""
        with self.db.session() as s:
            users: dict[str, User] = {}

            def line(p: Post) -> str:
                if p.user_id not in users:
                    u_ = s.get(User, p.user_id)
                    if u_ is not None:
                        users[p.user_id] = u_
                u = users.get(p.user_id)
                name = f"{u.display_name} (@{u.username})" if u else p.user_id
                return f"{name} {fmt_ms(p.create_at)[:16]}: {p.message}"

            if kind == "thread":
                if not thread_id:
                    raise InvalidRequest("thread_id: required for a thread summary")
                root = s.get(Post, thread_id)
                if root is None:
                    raise NotFound(f"post {thread_id!r} does not exist")
                root_id = root.root_id or root.id
                if not scope.allows(root.channel_id):
                    raise NotFound(f"post {thread_id!r} does not exist or you may not read it")
                posts = list(s.scalars(select(Post).where(
                    (Post.id == root_id) | (Post.root_id == root_id), Post.delete_at == 0)
                    .order_by(Post.create_at)))
                ch = s.get(Channel, root.channel_id)
                return (f"Thread in ~{ch.name if ch else ''}", [root.channel_id],
                        [(p.id, line(p)) for p in posts])
            if kind == "channel":
                if not channel_id:
                    raise InvalidRequest("channel_id: required for a channel summary")
                ch = s.get(Channel, channel_id)
                if ch is None:  # by name: among the channels of that name the user may read
                    named = [c for c in s.scalars(select(Channel).where(
                        Channel.name == channel_id.lstrip("~"))) if scope.allows(c.id)]
                    if len(named) > 1:
                        raise InvalidRequest(f"channel_id: {channel_id!r} is ambiguous (several "
                                             "teams have it): give the channel id")
                    ch = named[0] if named else None
                if ch is None or not scope.allows(ch.id):
                    raise NotFound(f"channel {channel_id!r} does not exist or you may not read it")
                if since is None:
                    if days is None:
                        raise InvalidRequest("since or days: one is required for a channel summary")
                    since = int(now_ms() - days * 86_400_000)
                posts = list(s.scalars(select(Post).where(
                    Post.channel_id == ch.id, Post.create_at >= since, Post.delete_at == 0)
                    .order_by(Post.create_at)))
                return (f"~{ch.name} since {fmt_ms(since)[:10]}", [ch.id],
                        [(p.id, line(p)) for p in posts])
            if kind == "meeting":
                if transcript:
                    # an uploaded transcript (already parsed by the API): the uploader's own
                    lines = [x for x in transcript.splitlines() if x.strip()]
                    return ("uploaded meeting transcript", [],
                            [("", "\n".join(lines[i:i + 12])) for i in range(0, len(lines), 12)])
                if not file_id:
                    raise InvalidRequest("file_id or transcript: one is required for a meeting summary")
                f = s.get(File, file_id)
                if f is None or f.kind != "transcript" or not scope.allows(f.channel_id):
                    raise NotFound(f"transcript {file_id!r} does not exist or you may not read it")
                paragraphs = [p for p in f.text.split("\n") if p.strip()]
                return (f"Meeting {f.name}", [f.channel_id],
                        [(f.post_id, "\n".join(paragraphs[i:i + 12]))
                         for i in range(0, len(paragraphs), 12)])
        raise InvalidRequest("kind: must be thread, channel or meeting")

    async def summarize_events(self, who: str, kind: str, *, thread_id: str | None = None,
                               channel_id: str | None = None, since: int | None = None,
                               days: float | None = None, file_id: str | None = None,
                               transcript: str | None = None) -> AsyncIterator[Event]:
        t0 = time.perf_counter()
        user, scope, *_ = await asyncio.to_thread(self._start, who, None)
        title, channels, items = await asyncio.to_thread(
            lambda: self._summary_posts(user, scope, kind, thread_id=thread_id,
                                        channel_id=channel_id, since=since, days=days,
                                        file_id=file_id, transcript=transcript))
        sources = await asyncio.to_thread(self._item_sources, items, channels)
        gen = Generation(model=self.model_name)
        parts: list[str] = []
        try:
            async for delta in self._summary_text(user, title, sources, gen):
                parts.append(delta)
                yield Event("token", delta)
        except OpenOpsError as exc:
            yield Event("error", {"error": str(exc), "status": getattr(exc, "status", 502)})
            return
        text = "".join(parts)
        conv_id, answer_id = await asyncio.to_thread(
            self._save_summary, user, kind, title, text, items, channels, sources,
            dict(thread_id=thread_id, channel_id=channel_id, since=since, days=days,
                 file_id=file_id, channels=channels))
        cited = _cited(text, sources)
        yield Event("sources", [s.public() for s in cited])
        latency = (time.perf_counter() - t0) * 1000
        await asyncio.to_thread(
            self._audit, user_id=user.id, action="summary", question=f"{kind}: {title}",
            sources=sources, gen=gen, latency_ms=latency, answer_text=text,
            answer_id=answer_id, model=self.model_name)
        yield Event("done", {"answer_id": answer_id, "conversation_id": conv_id, "title": title,
                             "model": self.model_name, "posts": len(items),
                             "latency_ms": round(latency, 1)})

    def _item_sources(self, items: list[tuple[str, str]], channels: list[str]) -> list[Source]:
        with self.db.session() as s:
            ch = s.get(Channel, channels[0]) if channels else None
            from .db import Team

            team = s.get(Team, ch.team_id) if ch and ch.team_id else None
            posts = {p.id: p for p in s.scalars(select(Post).where(
                Post.id.in_({i for i, _ in items})))}
        base = self.settings.permalink_base
        out = []
        for n, (pid, text) in enumerate(items, 1):
            p = posts.get(pid)
            m = re.match(r"^(.+?) \(@", text)
            out.append(Source(
                n=n, chunk_id="", post_id=pid, thread_id=(p.root_id or p.id) if p else "",
                channel_id=channels[0] if channels else "", channel_name=ch.name if ch else "",
                team_name=team.name if team else "", channel_type=ch.type if ch else "",
                author=m.group(1) if m else "", created_at=p.create_at if p else 0,
                permalink=(f"{base}/{team.name if team else '_redirect'}/pl/{pid}"
                           if base and pid else None),
                source="message", file_name=None, text=text))
        return out

    async def _summary_text(self, user: User, title: str, sources: list[Source],
                            gen: Generation) -> AsyncIterator[str]:
        if not sources:
            gen.text = "Nothing to summarise: no messages in that range."
            yield gen.text
            return
        reader = f"{user.display_name} (@{user.username}{', ' + user.position if user.position else ''})"
        if self.generator is None:
            res = self.extractive.summarize([s.text for s in sources],
                                            boost=[f"@{user.username}", user.first_name])
            text = guard_markdown(_render_summary(title, reader, res, sources))
            gen.text = text
            for piece in re.findall(r"\S+\s*|\s+", text):
                yield piece
            return
        budget = self.settings.llm_context_tokens - ANSWER_RESERVE - self._tokens(SUMMARY_SYSTEM) - 200
        groups: list[list[Source]] = [[]]
        used = 0
        for s in sources:
            cost = self._tokens(s.text) + 16
            if groups[-1] and used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(s)
            used += cost
        notes: list[str] = []
        if len(groups) > 1:  # map: notes per part, citations kept; then reduce below
            for g in groups:
                msgs = [ChatMessage("system", SUMMARY_SYSTEM), ChatMessage("user", (
                    "Summarise this part of the conversation as short notes with citations.\n\n"
                    + "\n".join(fence(s.n, f'author="{s.author}"', s.text) for s in g)))]
                notes.append(await self.generator.acomplete(msgs))
            body = "\n\n".join(fence(i + 1, 'kind="notes"', n) for i, n in enumerate(notes))
        else:
            body = "\n".join(fence(s.n, f'author="{s.author}" time="{fmt_ms(s.created_at)}"',
                                   s.text) for s in groups[0])
        msgs = [ChatMessage("system", SUMMARY_SYSTEM), ChatMessage("user", (
            f"The reader is {reader}; point out what concerns them.\nSummarise: {title}\n\n{body}"))]
        async for out in self._guarded(msgs, gen, {s.permalink for s in sources if s.permalink}):
            yield out

    def _save_summary(self, user: User, kind: str, title: str, text: str, items, channels,
                      sources: list[Source], params: dict) -> tuple[str, str]:
        conv_id, answer_id, t = uuid.uuid4().hex, uuid.uuid4().hex, now_ms()
        with self.db.session() as s:
            s.add(Conversation(id=conv_id, user_id=user.id, kind="summary", title=title,
                               source_post_ids=json.dumps([i for i, _ in items]),
                               channel_ids=json.dumps(channels), params=json.dumps(params),
                               created_at=t))
            s.add(ConversationMessage(conversation_id=conv_id, role="assistant", content=text,
                                      answer_id=answer_id, created_at=t))
            s.add(Answer(id=answer_id, conversation_id=conv_id, user_id=user.id,
                         question=f"summary: {title}", text=text, model=self.model_name,
                         created_at=t, sources=json.dumps([x.public() for x in sources[:50]])))
            s.commit()
        return conv_id, answer_id

    # ---- audit ----------------------------------------------------------------------------
    def audit(self, limit: int = 100, user: str | None = None) -> list[dict]:
        with self.db.session() as s:
            q = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
            if user:
                u = find_user(s, user)
                q = q.where(AuditRecord.user_id == (u.id if u else user))
            rows = list(s.scalars(q))
        return [{
            "id": r.id, "at": r.at, "user_id": r.user_id, "action": r.action,
            "question": r.question, "channel_ids": json.loads(r.channel_ids),
            "source_ids": json.loads(r.source_ids), "model": r.model,
            "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
            "latency_ms": r.latency_ms, "answer_text": r.answer_text, "answer_id": r.answer_id,
        } for r in rows]


def narrow(scope: Scope, audience: Scope) -> Scope:
    """The part of a user's scope that an audience may read too."""
    return Scope(user_id=scope.user_id,
                 channels={c: v for c, v in scope.channels.items() if audience.allows(c)},
                 public_team_ids=scope.public_team_ids & audience.public_team_ids)


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


def _cited(text: str, sources: list[Source]) -> list[Source]:
    nums = {int(n) for n in re.findall(r"\[(\d{1,3})\]", text)}
    cited = [s for s in sources if s.n in nums]
    return cited or sources  # no citation in the text: show what the answer was drawn from


def _render_summary(title: str, reader: str, res: dict[str, list[Sentence]],
                    sources: list[Source]) -> str:
    def items(key: str) -> list[str]:
        out = []
        for sent in res[key]:
            who = f"{sent.author}: " if sent.author else ""
            out.append(f"- {who}{sent.text} [{sources[sent.source].n}]")
        return out or ["- None."]

    lines = [f"**Summary of {title}** for {reader}",
             "_Extractive summary (no language model): sentences taken from the messages._", ""]
    for key, head in (("key_points", "Key points"), ("decisions", "Decisions"),
                      ("action_items", "Action items"), ("open_questions", "Open questions")):
        lines += [f"## {head}", *items(key), ""]
    return "\n".join(lines).rstrip() + "\n"
