"""Summaries of a thread, a channel over a time range, or a meeting transcript: key points,
decisions, action items and open questions, cited, for the person who asked (scoped to what
they may read). Too long for one model call: map (notes per part), then reduce."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from .conversations import Conversations
from .db import Channel, File, Post, Team, User
from .errors import InvalidRequest, NotFound, OpenOpsError
from .extractive import Extractive, Sentence
from .generation import ANSWER_RESERVE, Event, Writer, cited, failure, tokens, words
from .guard import guard_markdown
from .llm.base import ChatMessage, Generation, Generator, ProviderError
from .permissions import Scope, audience_scope, narrow, unreadable
from .profile import Profile, Profiles
from .prompts import PERSONAL_SUMMARY_SYSTEM, SUMMARY_SYSTEM, fence, language
from .records import Records, Source
from .util import fmt_ms, now_ms, permalink


class Summaries(Writer):
    def __init__(self, settings, db, search, generator: Generator | None, *,
                 conversations: Conversations | None = None, records: Records | None = None,
                 extractive: Extractive | None = None, profiles: Profiles | None = None):
        super().__init__(settings, db, search, generator, extractive)
        self.profiles = profiles or Profiles(settings, db, lambda: search.embedder,
                                                lambda: search.index)
        self.conversations = conversations or Conversations(db)
        self.records = records or Records(settings, db)

    async def events(self, who: str, kind: str, *, thread_id: str | None = None,
                     channel_id: str | None = None, since: int | None = None,
                     days: float | None = None, file_id: str | None = None,
                     transcript: str | None = None, personalize: bool | None = None,
                     for_user: str | None = None, audience: str | None = None,
                     actor: str | None = None) -> AsyncIterator[Event]:
        """The summary as events (``token``, ``progress``, ``sections``, ``sources``,
        ``done``, or ``error``).

        ``personalize``: shape it for its reader (default: the reader's own setting, which
        wins when they turned it off). ``for_user``: a summary for someone else, built only
        from what both the asker and that reader may read, saved as the reader's (they get it
        by DM and may follow up). ``audience``: a channel the summary is posted in, whose
        readers all see it: the profile that shapes it is narrowed to what they may all read.
        ``actor``: who acts (the service key or the signed-in person), for the audit log."""
        t0 = time.perf_counter()
        user, scope = await asyncio.to_thread(self.user_scope, who)
        reader, rscope = user, scope
        if for_user is not None:
            reader, theirs = await asyncio.to_thread(self.user_scope, for_user)
            rscope = narrow(theirs, scope)
        title, channels, items = await asyncio.to_thread(
            lambda: self._posts(reader, rscope, kind, thread_id=thread_id,
                                channel_id=channel_id, since=since, days=days,
                                file_id=file_id, transcript=transcript))
        sources = await asyncio.to_thread(self._item_sources, items, channels, kind)
        profile, applied, why = await asyncio.to_thread(
            self._profile, reader, rscope, personalize, audience, reader.id == user.id)
        gen = Generation(model=self.model_name)
        shaped: dict = {}
        try:
            async for ev in self._text(reader, title, sources, gen, profile, applied, shaped):
                yield ev
        except OpenOpsError as exc:
            yield failure(exc)
            return
        sections = shaped.get("sections") or []
        lead = why if applied else ""
        text = guard_markdown(render(title, _reader_line(reader), sections, lead=lead,
                                     notice=shaped.get("notice", "")),
                              {s.permalink for s in sources if s.permalink})
        personalization = {"applied": applied, "why": why,
                           "signals": [x.public() for x in profile.signals[:8]]
                           if applied and profile is not None else []}
        yield Event("sections", {"sections": sections, "personalization": personalization,
                                 "summary": text})
        conv_id, answer_id = await asyncio.to_thread(
            self._save, reader, title, text, items, channels, sources,
            dict(thread_id=thread_id, channel_id=channel_id, since=since, days=days,
                 file_id=file_id, channels=channels, personalize=applied))
        cites = cited(text, sources)
        yield Event("sources", [s.public() for s in cites])
        latency = (time.perf_counter() - t0) * 1000
        await asyncio.to_thread(
            self.records.audit_generation, user_id=user.id, action="summary",
            question=(f"{kind}: {title}" if reader.id == user.id
                      else f"{kind} for @{reader.username}: {title}"),
            sources=sources, cited=cites, actor=actor,
            input_tokens=gen.input_tokens, output_tokens=gen.output_tokens, latency_ms=latency,
            answer_text=text,
            answer_id=answer_id, model=self.model_name)
        yield Event("done", {"answer_id": answer_id, "conversation_id": conv_id, "title": title,
                             "model": self.model_name, "posts": len(items),
                             "for": reader.username, "latency_ms": round(latency, 1)})

    def _profile(self, reader: User, scope: Scope, personalize: bool | None,
                 audience: str | None, own: bool) -> tuple[Profile | None, bool, str]:
        """(profile, applied, why): the reader's profile within ``scope`` (and the audience's,
        when the summary is posted where others read it)."""
        with self.db.session() as s:
            setting = self.profiles.settings_of(s, reader.id).personalize
            if audience:
                scope = narrow(scope, audience_scope(
                    s, audience, include_archived=self.settings.include_archived))
        if personalize is False:
            return None, False, "generic summary: personalisation was not asked for"
        if not setting:
            return None, False, ("generic summary: personalisation is off in "
                                 + ("your" if own else "the reader's") + " profile")
        profile = self.profiles.build(reader, scope, private=own)
        if profile.vector is None:
            return profile, False, "generic summary: nothing is known yet about what matters to " \
                + ("you" if own else "the reader")
        why = profile.why if own else profile.why.replace("for you", f"for @{reader.username}", 1)
        return profile, True, why

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
                post = s.get(Post, thread_id)
                # missing, deleted (or in a thread whose root is) and unreadable look the same
                if post is None or not scope.allows(post.channel_id) or not _alive(s, post):
                    raise NotFound(unreadable("post", thread_id))
                root_id = post.root_id or post.id
                posts = list(s.scalars(select(Post).where(
                    (Post.id == root_id) | (Post.root_id == root_id), Post.delete_at == 0)
                    .order_by(Post.create_at)))
                ch = s.get(Channel, post.channel_id)
                return (f"Thread in ~{ch.name if ch else ''}", [post.channel_id],
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
                    raise NotFound(unreadable("channel", channel_id))
                if since is None:
                    if days is None:
                        raise InvalidRequest("since or days: one is required for a channel summary")
                    since = int(now_ms() - days * 86_400_000)
                # live posts, and no replies of a root deleted meanwhile: they went with it
                dead_root = aliased(Post)
                posts = list(s.scalars(select(Post).where(
                    Post.channel_id == ch.id, Post.create_at >= since, Post.delete_at == 0,
                    ~exists().where(dead_root.id == Post.root_id, dead_root.delete_at > 0))
                    .order_by(Post.create_at)))
                return (f"~{ch.name} since {fmt_ms(since)[:10]}", [ch.id],
                        [(p.id, line(p)) for p in posts])
            if kind == "meeting":
                if transcript:
                    # an uploaded transcript (already parsed by the API): the uploader's own
                    lines = [x for x in transcript.splitlines() if x.strip()]
                    return ("uploaded meeting transcript", [], [("", x) for x in lines])
                if not file_id:
                    raise InvalidRequest("file_id or transcript: one is required for a meeting summary")
                f = s.get(File, file_id)
                # a file deleted in the mirror (or whose post is) is one that does not exist
                post = s.get(Post, f.post_id) if f is not None else None
                if (f is None or f.kind != "transcript" or f.delete_at
                        or not scope.allows(f.channel_id)
                        or (post is not None and not _alive(s, post))):
                    raise NotFound(unreadable("transcript", file_id))
                # one source per turn: each cites its speaker and time
                turns = [p for p in f.text.split("\n") if p.strip()]
                return (f"Meeting {f.name}", [f.channel_id], [(f.post_id, t) for t in turns])
        raise InvalidRequest("kind: must be thread, channel or meeting")

    def _item_sources(self, items: list[tuple[str, str]], channels: list[str],
                      kind: str = "") -> list[Source]:
        with self.db.session() as s:
            ch = s.get(Channel, channels[0]) if channels else None
            team = s.get(Team, ch.team_id) if ch and ch.team_id else None
            posts = {p.id: p for p in s.scalars(select(Post).where(
                Post.id.in_({i for i, _ in items})))}
        base = self.settings.permalink_base
        team_name = team.name if team else ""
        # a DM's or group message's name is its members' ids: show its display name
        where = (ch.name if ch.type in ("O", "P") else ch.display_name) if ch else ""
        out = []
        for n, (pid, text) in enumerate(items, 1):
            p = posts.get(pid)
            m = re.match(r"^(.+?) \(@", text)
            out.append(Source(
                n=n, chunk_id="", post_id=pid, thread_id=(p.root_id or p.id) if p else "",
                channel_id=channels[0] if channels else "", channel_name=where,
                team_name=team_name, channel_type=ch.type if ch else "",
                author=m.group(1) if m else "", created_at=p.create_at if p else 0,
                permalink=permalink(base, team_name, pid), source="message", file_name=None,
                text=text))
        if kind == "meeting":
            turns(out)
        return out

    async def _text(self, user: User, title: str, sources: list[Source], gen: Generation,
                    profile: Profile | None, applied: bool, shaped: dict
                    ) -> AsyncIterator[Event]:
        """The summary's ``token`` events, with ``progress`` events while a long one is read
        part by part (map), before the summary of the notes (reduce) streams. ``shaped``
        receives the sections (and a notice) the final text is rendered from."""
        if not sources:
            gen.text = "Nothing to summarise: no messages in that range."
            shaped["sections"] = []
            shaped["notice"] = gen.text
            yield Event("token", gen.text)
            return
        boost = profile.involve if profile is not None else [f"@{user.username}", user.first_name]
        interest = profile.vector if applied and profile is not None else None
        terms = profile.words() if applied and profile is not None else ""
        res = await asyncio.to_thread(
            self.extractive.summarize, [s.text for s in sources], boost=boost,
            interest=interest, n_for_you=self.settings.for_you_items, words=terms,
            context=MEETING_CONTEXT if sources[0].speaker else 0)
        if self.generator is None:
            sections = extractive_sections(res, sources)
            shaped["sections"] = sections
            notice = "_Extractive summary (no language model): sentences taken from the messages"
            lang = language(user.locale)
            notice += (f", in their own words and language (yours is set to {lang})._"
                       if lang and lang != "English" else "._")
            shaped["notice"] = notice
            text = guard_markdown(render(title, _reader_line(user), sections, notice=notice,
                                         lead=profile.why if applied and profile else ""))
            gen.text = text
            for piece in words(text):
                yield Event("token", piece)
            return
        system = PERSONAL_SUMMARY_SYSTEM if applied else SUMMARY_SYSTEM
        budget = (self.settings.llm_context_tokens - ANSWER_RESERVE - tokens(system) - 200
                  - (self.settings.profile_prompt_tokens if applied else 0))
        groups: list[list[Source]] = [[]]
        used = 0
        for s in sources:
            cost = tokens(s.text) + 16
            if groups[-1] and used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(s)
            used += cost
        if len(groups) > 1:  # map: notes per part, citations kept; then reduce below
            notes: list[str] = []
            for g in groups:
                msgs = [ChatMessage("system", SUMMARY_SYSTEM), ChatMessage("user", (
                    "Summarise this part of the conversation as short notes with citations.\n\n"
                    + "\n".join(fence(s.n, f'author="{s.author}"', s.text) for s in g)))]
                notes.append(await self.generator.acomplete(msgs))
                # a long summary shows it is under way as each part is read
                yield Event("progress", {"stage": "map", "done": len(notes),
                                         "total": len(groups)})
            body = rekeyed(groups, notes)
        else:
            body = "\n".join(fence(s.n, f'author="{s.author}" time="{fmt_ms(s.created_at)}"',
                                   s.text) for s in groups[0])
        lang = language(user.locale) or "English"
        if applied and profile is not None:
            ranked = "\n".join(f"- [{sources[x.source].n}] {x.text}" for x in res["for_you"])
            ask = (f"{profile.text(self.settings.profile_prompt_tokens)}\n"
                   f"Write for this reader, in {lang} (keep the six headings exactly as given)."
                   f"\nThe sentences closest to what matters to them:\n{ranked}\n\n"
                   f"Summarise: {title}\n\n{body}")
        else:
            ask = (f"The reader is {_reader_line(user)}; point out what concerns them. "
                   f"Write in {lang} (keep the headings exactly as given).\n"
                   f"Summarise: {title}\n\n{body}")
        msgs = [ChatMessage("system", system), ChatMessage("user", ask)]
        parts: list[str] = []
        async for out in self.guarded(msgs, gen, {s.permalink for s in sources if s.permalink}):
            parts.append(out)
            yield Event("token", out)
        shaped["sections"] = parse_sections("".join(parts), {s.n for s in sources})

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


async def collect_summary(events: AsyncIterator[Event]) -> dict:
    """A summary's events joined into the API's response (an ``error`` event is raised)."""
    shaped: dict = {}
    sources: list[dict] = []
    done: dict = {}
    async for ev in events:
        if ev.type == "sections":
            shaped = ev.data
        elif ev.type == "sources":
            sources = ev.data
        elif ev.type == "done":
            done = ev.data
        elif ev.type == "error":
            raise ProviderError(ev.data["error"], status=ev.data.get("status", 502))
    return {"summary": shaped.get("summary", ""), "title": done.get("title", ""),
            "sources": sources, "sections": shaped.get("sections", []),
            "personalization": shaped.get("personalization",
                                          {"applied": False, "why": "", "signals": []}),
            "conversation_id": done.get("conversation_id", ""),
            "answer_id": done.get("answer_id", ""), "model": done.get("model", ""),
            "for": done.get("for", "")}


CITATION = re.compile(r"\[(\d{1,4})\]")


def _keep_citation(valid: set[int], m: re.Match) -> str:
    return m.group(0) if int(m.group(1)) in valid else ""


def rekeyed(groups: list[list[Source]], notes: list[str]) -> str:
    """The map notes for the reduce, keyed by the sources they cite: each note line goes in
    the fence of the first source of its part that it cites, so that every number the
    reducing model reads, as a fence id or as a citation, is a source's (numbering the notes
    themselves 1, 2, ... made the model cite note numbers as if they were sources). A
    citation of a source outside the part is dropped; lines citing none stay in a fence of
    their part, which has no number to cite."""
    out: list[str] = []
    for part, (group, note) in enumerate(zip(groups, notes), 1):
        valid = {s.n for s in group}
        by_source: dict[int, list[str]] = {}
        loose: list[str] = []
        for line in note.splitlines():
            line = CITATION.sub(partial(_keep_citation, valid), line)
            if not line.strip():
                continue
            cites = [int(n) for n in CITATION.findall(line)]
            (by_source.setdefault(cites[0], []) if cites else loose).append(line)
        for src in group:
            if src.n in by_source:
                out.append(fence(src.n, f'author="{src.author}" time="{fmt_ms(src.created_at)}"',
                                 "\n".join(by_source[src.n])))
        if loose:
            out.append(fence(f"part-{part}", 'kind="notes"', "\n".join(loose)))
    return "\n".join(out)


def _alive(s: Session, post: Post) -> bool:
    """Neither the post nor its thread's root is deleted (a root deleted live takes its
    replies with it)."""
    if post.delete_at:
        return False
    if post.root_id:
        root = s.get(Post, post.root_id)
        return root is None or not root.delete_at  # an unknown root: partial data, kept
    return True


SECTION_TITLES = {"for_you": "For you", "key_points": "Key points", "decisions": "Decisions",
                  "action_items": "Action items", "open_questions": "Open questions",
                  "also_discussed": "Also discussed"}
ALWAYS = ("key_points", "decisions", "action_items", "open_questions")  # shown even if empty
def _reader_line(user: User) -> str:
    return f"{user.display_name} (@{user.username}{', ' + user.position if user.position else ''})"


def turns(sources: list[Source]) -> None:
    """A meeting's sources are its turns (``[HH:MM:SS] Speaker: text``): each gets its
    speaker, and its start and end in ms from the start (the end is the next turn's start;
    the last turn's is estimated from its length at ~2.5 words a second)."""
    starts: list[int | None] = []
    for src in sources:
        m = TURN.match(src.text)
        if m:
            h, mi, se = (int(x) for x in m.group("ts").split(":"))
            starts.append(((h * 60 + mi) * 60 + se) * 1000)
            src.speaker = m.group("speaker").strip()
            src.author = src.author or src.speaker
        else:
            starts.append(None)
    for i, (src, start) in enumerate(zip(sources, starts)):
        if start is None:
            continue
        src.start_ms = start
        later = next((x for x in starts[i + 1:] if x is not None and x >= start), None)
        src.end_ms = later if later is not None else start + max(
            2000, int(len(src.text.split()) / 2.5 * 1000))


# a meeting's "For you": closeness averaged with the sentence before and after (its topics run
# over stretches of talk); wider measured better on QMSum but pulled the sample's Head of
# Content toward the engineering core of the product sync
MEETING_CONTEXT = 1
TURN = re.compile(r"^\[(?P<ts>\d\d:\d\d:\d\d)\] (?P<speaker>[^:]{1,80}): ")


def extractive_sections(res: dict[str, list[Sentence]], sources: list[Source]) -> list[dict]:
    """The extractive summary's sections: for_you first when personalised, each item one
    sentence with the source it came from."""
    out = []
    for key, title in SECTION_TITLES.items():
        sents = res.get(key) or []
        if not sents and key not in ALWAYS:
            continue
        items = []
        for sent in sents:
            text = f"{sent.author}: {sent.text}" if sent.author else sent.text
            if key == "also_discussed":
                text = brief(text)
            items.append({"text": text, "sources": [sources[sent.source].n]})
        out.append({"key": key, "title": title, "items": items})
    return out


def brief(text: str, words_: int = 14) -> str:
    parts = text.split()
    return text if len(parts) <= words_ else " ".join(parts[:words_]) + " …"


def parse_sections(text: str, valid: set[int]) -> list[dict]:
    """Sections parsed from a model's Markdown answer (headings by their titles, one item per
    list item or paragraph, citations kept as the item's sources). A model that ignores the
    format still yields a usable summary: its text, paragraph by paragraph, as key points."""
    from markdown_it import MarkdownIt

    by_title = {t.lower(): k for k, t in SECTION_TITLES.items()}
    tokens_ = MarkdownIt("commonmark").parse(text)
    sections: dict[str, list[dict]] = {}
    current: str | None = None
    heading = False
    for tok in tokens_:
        if tok.type == "heading_open":
            heading = True
        elif tok.type == "heading_close":
            heading = False
        elif tok.type == "inline" and heading:
            title = re.sub(r"[*_`#:]", "", tok.content).strip().lower()
            current = by_title.get(title)
            if current is not None:
                sections.setdefault(current, [])
        elif tok.type == "inline" and tok.content.strip():
            content = tok.content.strip()
            if re.fullmatch(r"_?none\.?_?", content, re.I):
                sections.setdefault(current or "key_points", [])
                continue
            ns = [int(n) for n in CITATION.findall(content) if int(n) in valid]
            clean = re.sub(r"\s+([.,;:!?])", r"\1",
                           re.sub(r"\s+", " ", CITATION.sub("", content))).strip()
            if clean:
                sections.setdefault(current or "key_points", []).append(
                    {"text": clean, "sources": list(dict.fromkeys(ns))})
    out = []
    for key, title in SECTION_TITLES.items():
        if key in sections or key in ALWAYS:
            out.append({"key": key, "title": title, "items": sections.get(key, [])})
    return out


def render(title: str, reader: str, sections: list[dict], *, lead: str = "",
           notice: str = "") -> str:
    """The Markdown summary, rendered from its sections (citations as ``[n]``)."""
    lines = [f"**Summary of {title}** for {reader}"]
    if lead:
        lines.append(f"_Personalised {lead}._")
    if notice:
        lines.append(notice)
    lines.append("")
    for sec in sections:
        lines.append(f"## {sec['title']}")
        if not sec["items"]:
            lines.append("- None.")
        for item in sec["items"]:
            cites = "".join(f"[{n}]" for n in item["sources"])
            lines.append(f"- {item['text']}" + (f" {cites}" if cites else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
