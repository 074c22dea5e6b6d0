"""Summaries of a thread, a channel over a time range, or a meeting transcript: key points,
decisions, action items and open questions, cited, for the person who asked (scoped to what
they may read). Too long for one model call: map (notes per part), then reduce."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select

from .conversations import Conversations
from .db import Channel, File, Post, Team, User
from .errors import InvalidRequest, NotFound, OpenOpsError
from .extractive import Extractive, Sentence
from .generation import ANSWER_RESERVE, Event, Writer, cited, failure, tokens, words
from .guard import guard_markdown
from .llm.base import ChatMessage, Generation, Generator
from .permissions import Scope
from .prompts import SUMMARY_SYSTEM, fence
from .records import Records, Source
from .util import fmt_ms, now_ms, permalink


class Summaries(Writer):
    def __init__(self, settings, db, search, generator: Generator | None, *,
                 conversations: Conversations | None = None, records: Records | None = None,
                 extractive: Extractive | None = None):
        super().__init__(settings, db, search, generator, extractive)
        self.conversations = conversations or Conversations(db)
        self.records = records or Records(settings, db)

    async def events(self, who: str, kind: str, *, thread_id: str | None = None,
                     channel_id: str | None = None, since: int | None = None,
                     days: float | None = None, file_id: str | None = None,
                     transcript: str | None = None) -> AsyncIterator[Event]:
        t0 = time.perf_counter()
        user, scope = await asyncio.to_thread(self.user_scope, who)
        title, channels, items = await asyncio.to_thread(
            lambda: self._posts(user, scope, kind, thread_id=thread_id,
                                channel_id=channel_id, since=since, days=days,
                                file_id=file_id, transcript=transcript))
        sources = await asyncio.to_thread(self._item_sources, items, channels)
        gen = Generation(model=self.model_name)
        parts: list[str] = []
        try:
            async for delta in self._text(user, title, sources, gen):
                parts.append(delta)
                yield Event("token", delta)
        except OpenOpsError as exc:
            yield failure(exc)
            return
        text = "".join(parts)
        conv_id, answer_id = await asyncio.to_thread(
            self._save, user, title, text, items, channels, sources,
            dict(thread_id=thread_id, channel_id=channel_id, since=since, days=days,
                 file_id=file_id, channels=channels))
        yield Event("sources", [s.public() for s in cited(text, sources)])
        latency = (time.perf_counter() - t0) * 1000
        await asyncio.to_thread(
            self.records.audit_generation, user_id=user.id, action="summary",
            question=f"{kind}: {title}", sources=sources, input_tokens=gen.input_tokens,
            output_tokens=gen.output_tokens, latency_ms=latency, answer_text=text,
            answer_id=answer_id, model=self.model_name)
        yield Event("done", {"answer_id": answer_id, "conversation_id": conv_id, "title": title,
                             "model": self.model_name, "posts": len(items),
                             "latency_ms": round(latency, 1)})

    def _posts(self, user: User, scope: Scope, kind: str, *, thread_id: str | None,
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

    def _item_sources(self, items: list[tuple[str, str]], channels: list[str]) -> list[Source]:
        with self.db.session() as s:
            ch = s.get(Channel, channels[0]) if channels else None
            team = s.get(Team, ch.team_id) if ch and ch.team_id else None
            posts = {p.id: p for p in s.scalars(select(Post).where(
                Post.id.in_({i for i, _ in items})))}
        base = self.settings.permalink_base
        team_name = team.name if team else ""
        out = []
        for n, (pid, text) in enumerate(items, 1):
            p = posts.get(pid)
            m = re.match(r"^(.+?) \(@", text)
            out.append(Source(
                n=n, chunk_id="", post_id=pid, thread_id=(p.root_id or p.id) if p else "",
                channel_id=channels[0] if channels else "", channel_name=ch.name if ch else "",
                team_name=team_name, channel_type=ch.type if ch else "",
                author=m.group(1) if m else "", created_at=p.create_at if p else 0,
                permalink=permalink(base, team_name, pid), source="message", file_name=None,
                text=text))
        return out

    async def _text(self, user: User, title: str, sources: list[Source],
                    gen: Generation) -> AsyncIterator[str]:
        if not sources:
            gen.text = "Nothing to summarise: no messages in that range."
            yield gen.text
            return
        reader = f"{user.display_name} (@{user.username}{', ' + user.position if user.position else ''})"
        if self.generator is None:
            res = self.extractive.summarize([s.text for s in sources],
                                            boost=[f"@{user.username}", user.first_name])
            text = guard_markdown(_render(title, reader, res, sources))
            gen.text = text
            for piece in words(text):
                yield piece
            return
        budget = self.settings.llm_context_tokens - ANSWER_RESERVE - tokens(SUMMARY_SYSTEM) - 200
        groups: list[list[Source]] = [[]]
        used = 0
        for s in sources:
            cost = tokens(s.text) + 16
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
        async for out in self.guarded(msgs, gen, {s.permalink for s in sources if s.permalink}):
            yield out

    def _save(self, user: User, title: str, text: str, items, channels,
              sources: list[Source], params: dict) -> tuple[str, str]:
        answer_id, t = uuid.uuid4().hex, now_ms()
        with self.db.session() as s:
            conv_id = self.conversations.add_summary(
                s, user=user, title=title, text=text, source_post_ids=[i for i, _ in items],
                channels=channels, params=params, answer_id=answer_id, t=t)
            self.records.add_answer(s, answer_id=answer_id, conversation_id=conv_id,
                                    user_id=user.id, question=f"summary: {title}", text=text,
                                    model=self.model_name, created_at=t, sources=sources[:50])
            s.commit()
        return conv_id, answer_id


def _render(title: str, reader: str, res: dict[str, list[Sentence]],
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
