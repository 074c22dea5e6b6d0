"""The Mattermost bot: answers where people talk, keeps the mirror and the index fresh.

* An @-mention in a channel thread is answered in that thread, from what *every reader of that
  channel* may read (the audience rule); if the asker's own scope finds more, the thread is told
  so and the fuller answer goes to the asker by DM. A DM with the bot uses the asker's full
  scope and remembers the conversation. A mention in the thread of a bot summary is a
  follow-up on that summary.
* Answers stream: the post is created at once and edited as tokens arrive (throttled); an
  answer longer than a post continues in the next one; a failure ends the post with a short
  error.
* Every WebSocket event that changes content or permissions goes to the mirror in arrival
  order (:mod:`ingest.mattermost.events`); dirty channels are re-indexed in the background
  within a second. The bot's own handlers (a post that may be a question, a reaction that may
  be feedback) sit in a table by event type in front of that.
* After any gap in the WebSocket (and at start), posts changed since each channel's cursor are
  fetched through REST and handled like live ones: nothing is missed, and a post the bot has
  taken up (``bot_triggers``) is never answered again, across restarts."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ingest.mattermost.client import EventStream, Mattermost, MattermostError
from ingest.mattermost.events import EventMirror, json_field
from ingest.mattermost.mirror import Mirror, mention
from ingest.mattermost.refresh import Refresher
from ingest.mattermost.sync import Syncer
from ingest.mattermost.worker import IndexWorker
from rag.db import BotConversation, BotPost, BotTrigger, Channel, File, Post, User
from rag.errors import NotFound, OpenOpsError
from rag.guard import StreamGuard, guard_markdown
from rag.permissions import audience_scope, known_user, readable_scope
from rag.util import fmt_ms, now_ms

from .alerts import AlertSender
from .catchup import Catchups

log = logging.getLogger("openops.bot")

UP = {"+1", "thumbsup", "thumbs_up", "white_check_mark", "heavy_check_mark"}
DOWN = {"-1", "thumbsdown", "thumbs_down"}


DM_HINT = ("I found more on this in places not everyone in this channel can read, so I left it "
           "out of my answer here and sent you a fuller one by direct message.")
MODEL_DOWN = (":warning: The language model is unavailable right now; an admin can find the "
              "reason in the OpenOps log{ref}.")


def warning(message: str, status: int | None, reference: str | None = None) -> str:
    """What a post says about a failure. A provider's error (5xx) names internal endpoints
    and settings: it goes to the log, and the channel gets a short generic line (with the
    reference the log filed it under, when the services gave one)."""
    if status is None or status >= 500:
        log.warning("answer failed (%s): %s", status, message)
        return MODEL_DOWN.format(ref=f" (reference {reference})" if reference else "")
    return f":warning: {message}"


def failure_text(exc: BaseException) -> str:
    """:func:`warning` for an exception (an unexpected one is logged with its traceback)."""
    if isinstance(exc, OpenOpsError):
        return warning(str(exc), getattr(exc, "status", 400))
    log.error("answer failed", exc_info=exc)
    return (":warning: Something went wrong; an admin can find the reason in the OpenOps log "
            f"({exc.__class__.__name__}).")


@dataclass
class StreamPost:
    """A bot reply that grows as tokens arrive: edits throttled by time and tokens, continued
    in a new post past Mattermost's limit."""

    bot: Bot
    channel_id: str
    root_id: str
    header: str = ""
    posts: list[str] = field(default_factory=list)
    text: str = ""
    _shown: str = ""
    _last_edit: float = 0.0
    _tokens_since: int = 0
    _offset: int = 0  # where the current post's text starts in self.text
    # every answer and summary goes through the output guard once more, whatever produced it
    # (the extractive mode quotes source sentences verbatim): no image, HTML or link renders
    # in a bot post except the source permalinks the bot adds itself
    guard: StreamGuard = field(default_factory=StreamGuard)
    allowed: set[str] = field(default_factory=set)  # the permalinks the sources block adds

    @property
    def limit(self) -> int:
        return self.bot.settings.bot_post_limit - 64

    async def open(self, placeholder: str = "…") -> str:
        p = await self.bot.mm.create_post(self.channel_id, self.header + placeholder,
                                          root_id=self.root_id)
        self.posts.append(p["id"])
        self._last_edit = time.monotonic()
        return p["id"]

    async def feed(self, delta: str) -> None:
        self.text += self.guard.feed(delta)
        self._tokens_since += 1
        s = self.bot.settings
        due = (time.monotonic() - self._last_edit) * 1000 >= s.bot_stream_interval_ms
        if due or self._tokens_since >= s.bot_stream_tokens:
            await self._show(final=False)

    def _cut(self, body: str) -> int:
        """Where to end a post that is too long: at a paragraph, a line or a space."""
        window = body[: self.limit]
        for sep in ("\n\n", "\n", " "):
            i = window.rfind(sep)
            if i > self.limit // 2:
                return i + len(sep)
        return self.limit

    def _post_text(self, body: str, final: bool) -> str:
        """Each post passes the guard on its own: the answer was guarded as one text, but a
        post cut from it (inside a code block or a code span, say) is rendered by itself, and
        what was inert code in the whole can be live Markdown in a part."""
        return guard_markdown(body, self.allowed, open_end=not final)

    async def _show(self, final: bool) -> None:
        body = self.text[self._offset:]
        while len(self.header) + len(body) > self.limit:
            cut = self._cut(body)
            await self.bot.mm.patch_post(self.posts[-1], self.header + self._post_text(
                body[:cut].rstrip(), final=True))
            self._offset += cut
            body = self.text[self._offset:]
            p = await self.bot.mm.create_post(self.channel_id, "(continued) …",
                                              root_id=self.root_id)
            self.posts.append(p["id"])
            self.header = "(continued)\n"
        body = self._post_text(body, final)
        shown = self.header + (body if final else body + " …")
        if shown != self._shown:
            await self.bot.mm.patch_post(self.posts[-1], shown)
            self._shown = shown
        self._last_edit = time.monotonic()
        self._tokens_since = 0

    async def close(self, tail: str = "", allowed: set[str] | None = None) -> None:
        """``tail``: text the bot adds itself (already guarded), e.g. the sources block whose
        ``allowed`` permalinks stay links."""
        self.allowed |= allowed or set()
        self.text += self.guard.flush() + tail
        await self._show(final=True)


def sources_block(sources: list[dict]) -> str:
    if not sources:
        return ""
    lines = ["", "", "**Sources**"]
    for s in sources[:10]:
        where = f"~{s.get('channel_name')}" if s.get("channel_type") in ("O", "P") else "a message"
        label = f"[{s['n']}] {where}, {s.get('author') or 'unknown'}, {fmt_ms(s['created_at'])[:10]}"
        if s.get("file_name"):
            label += f", {s['file_name']}"
        link = s.get("permalink")
        # author and file names are their owners' to choose: labels pass the guard, and so
        # does the block (only the permalinks of these sources stay links)
        label = guard_markdown(label, open_end=True).replace("\n", " ")
        lines.append(f"- [{label}]({link})" if link else f"- {label}")
    return "\n\n" + guard_markdown("\n".join(lines[2:]),
                                   {s["permalink"] for s in sources if s.get("permalink")})


class Bot:
    def __init__(self, runtime, mm: Mattermost, worker: IndexWorker | None = None, *,
                 refresher: Refresher | None = None):
        self.rt = runtime
        self.settings = runtime.settings
        self.mm = mm
        self.worker = worker
        self.mirror = Mirror(runtime.db, on_dirty=worker.poke if worker else None)
        self.syncer = Syncer(mm, self.mirror)
        # the asker's permissions are re-read before each answer; Live shares its refresher
        # (and its per-user cache) between the bot and the API
        self.refresher = refresher or Refresher(
            mm, self.mirror, refresh_s=self.settings.permission_refresh_s)
        self.events = EventMirror(mm, self.mirror, self.syncer, self.refresher, self._spawn,
                                  lambda: self.me.get("id", ""))
        self.handlers = {"posted": self._on_posted, "reaction_added": self._on_reaction,
                         "user_added": self._on_user_added,
                         "channel_viewed": self._on_channel_viewed}
        self.alerts = AlertSender(self)
        self.catchup_dms = Catchups(self)
        self._queue: asyncio.Queue[dict] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self.stream: EventStream | None = None
        self.me: dict = {}
        self.catchups = 0
        # a burst of mentions must not become a burst of model calls
        self.busy = asyncio.Semaphore(self.settings.bot_max_concurrent_answers)

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.me = await self.mm.login()
        self.mirror.bot_user_id = self.me["id"]
        self.mirror.bot_username = self.me.get("username")
        await asyncio.to_thread(self.mirror.upsert_user, self.me)
        self.stream = EventStream(self.mm, self._enqueue, self._connected)
        self._spawn(self.stream.run(), "websocket")
        self._spawn(self._consume(), "events")
        self._spawn(self.alerts.run(), "alerts")

    async def stop(self) -> None:
        if self.stream:
            self.stream.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.mm.close()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"openops-bot-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bot task %s failed", task.get_name(), exc_info=task.exception())

    # ---- events ---------------------------------------------------------------------------
    async def _enqueue(self, event: dict) -> None:
        await self._queue.put(event)

    async def _connected(self, reconnected: bool) -> None:
        log.info("Mattermost WebSocket %s", "reconnected: catching up" if reconnected
                 else "connected: catching up")
        self._spawn(self.catch_up(), "catch-up")

    async def catch_up(self) -> None:
        """Posts changed since each channel's cursor, through REST, handled like live ones:
        missed mentions are answered (once). A channel with no cursor yet (created, or first
        seen, during the gap) is read from the newest cursor of all; on a fresh install, with
        no cursor at all, history comes from a re-index instead."""
        for post_id in await asyncio.to_thread(self._retries):
            try:  # mentions whose reply Mattermost refused while it was going away
                await self._maybe_answer(await self.mm.post_by_id(post_id), {})
            except MattermostError as exc:
                log.warning("post %s: still cannot answer it (%s)", post_id, exc)
        cursors = await asyncio.to_thread(self.mirror.cursors)
        watermark = max(cursors.values(), default=0)
        for ch in await self._my_channels():
            await self.events.ensure_channel(ch["id"])
            since = cursors.get(ch["id"], watermark)
            if not since:
                continue

            async def missed(p: dict, ch=ch, since=since) -> None:
                if int(p.get("create_at") or 0) > since and not p.get("delete_at"):
                    await self._maybe_answer(p, {"channel_type": ch.get("type")})

            try:
                await Syncer(self.mm, self.mirror, on_post=missed).posts(
                    ch["id"], since=since, full=False)
            except MattermostError as exc:
                log.warning("catch-up of channel %s failed: %s", ch["id"], exc)
        self.catchups += 1

    async def _my_channels(self) -> list[dict]:
        out: dict[str, dict] = {}
        try:
            teams = await self.mm.get(f"/api/v4/users/{self.me['id']}/teams")
            for t in teams:
                for ch in await self.mm.get(
                        f"/api/v4/users/{self.me['id']}/teams/{t['id']}/channels"):
                    out[ch["id"]] = ch
            for ch in await self.mm.user_channels(self.me["id"]):
                out.setdefault(ch["id"], ch)
        except MattermostError as exc:
            log.warning("listing the bot's channels failed: %s", exc)
        return list(out.values())

    async def _consume(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.handle(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the bot
                log.exception("event %s failed", event.get("event"))
            finally:
                self._queue.task_done()

    async def handle(self, event: dict) -> None:
        """The bot's own handler for the event's type, else the mirror's (if any)."""
        handler = self.handlers.get(event.get("event") or "")
        if handler is None:
            await self.events.handle(event)
        else:
            await handler(event.get("data") or {}, event.get("broadcast") or {})

    async def _on_posted(self, data: dict, bc: dict) -> None:
        await self.events.posted(data, bc)
        post = json_field(data.get("post"))
        if post:
            await self._maybe_answer(post, data)
            await self._poster_viewed(post)

    async def _poster_viewed(self, post: dict) -> None:
        """Posting marks the channel viewed for the poster (as Mattermost does): a reader back
        after a while may be due a catch-up. ``channel_viewed`` goes to the viewer alone, so
        for everyone but the bot this is the view the bot sees."""
        props = post.get("props") or {}
        if (post.get("user_id") == self.me.get("id") or post.get("type") or post.get("delete_at")
                or props.get("from_bot") in ("true", True)
                or props.get("from_webhook") in ("true", True)):
            return
        prev = await asyncio.to_thread(self.mirror.viewed, post["channel_id"], post["user_id"],
                                       int(post.get("create_at") or now_ms()))
        if prev is not None:
            self._spawn(self.catchup_dms.consider(post["user_id"], post["channel_id"], prev),
                        "catch-up-summary")

    async def _on_user_added(self, data: dict, bc: dict) -> None:
        await self.events.user_added(data, bc)
        cid = bc.get("channel_id") or data.get("channel_id")
        uid = data.get("user_id") or bc.get("user_id")
        if cid and uid and uid != self.me.get("id"):
            self._spawn(self.catchup_dms.consider(uid, cid, None, joined=True), "catch-up-summary")

    async def _on_channel_viewed(self, data: dict, bc: dict) -> None:
        """``data.channel_id`` viewed by ``broadcast.user_id``: the previous view is read from
        the mirror before it moves to now."""
        cid, uid = data.get("channel_id"), bc.get("user_id")
        if not cid or not uid:
            return
        prev = await asyncio.to_thread(self.mirror.viewed, cid, uid, now_ms())
        if prev is not None:
            self._spawn(self.catchup_dms.consider(uid, cid, prev), "catch-up-summary")

    async def _on_reaction(self, data: dict, bc: dict) -> None:
        await self.events.reaction_added(data, bc)  # the reader's profile
        reaction = json_field(data.get("reaction"))
        if reaction:
            await self._feedback(reaction)

    async def refresh_reader(self, user_id: str) -> None:
        await self.refresher.refresh_reader(user_id)

    # ---- conversations --------------------------------------------------------------------
    def _mentions_me(self, post: dict, data: dict) -> bool:
        mentions = json_field(data.get("mentions")) or []
        if self.me.get("id") in mentions:
            return True
        name = self.me.get("username", "")
        return bool(name) and mention(name).search(post.get("message") or "") is not None

    async def _maybe_answer(self, post: dict, data: dict) -> None:
        if (post.get("user_id") == self.me.get("id") or post.get("type")
                or post.get("delete_at") or (post.get("props") or {}).get("from_bot") in
                ("true", True) or (post.get("props") or {}).get("from_webhook") in ("true", True)):
            return
        ctype = data.get("channel_type")
        dm = ctype in (None, "D") and await asyncio.to_thread(self.mirror.is_bot_dm,
                                                               post["channel_id"])
        if not dm and not self._mentions_me(post, data):
            return
        if not await asyncio.to_thread(self._claim, post["id"]):
            return  # answered (or being answered) already
        self._spawn(self._answer(post, dm), f"answer-{post['id']}")

    def _claim(self, post_id: str) -> bool:
        with self.rt.db.session() as s:
            s.add(BotTrigger(post_id=post_id, status="started", at=now_ms()))
            try:
                s.commit()
                return True
            except IntegrityError:
                s.rollback()
            # taken up before: only a reply Mattermost never received is tried again
            claimed = s.execute(update(BotTrigger).where(BotTrigger.post_id == post_id,
                                                         BotTrigger.status == "retry")
                                .values(status="started", at=now_ms()))
            s.commit()
            return bool(claimed.rowcount)

    def _retries(self) -> list[str]:
        day_ago = now_ms() - 86_400_000
        with self.rt.db.session() as s:
            return list(s.scalars(select(BotTrigger.post_id).where(
                BotTrigger.status == "retry", BotTrigger.at > day_ago).limit(100)))


    def _question(self, message: str) -> str:
        return mention(self.me.get("username", "")).sub("", message).strip(" ,:\n")

    async def _thread_context(self, post: dict) -> list[tuple[str, str]]:
        root = post.get("root_id")
        if not root:
            return []
        try:
            got = await self.mm.thread(root)
        except MattermostError:
            return []
        posts = sorted((p for p in got.get("posts", {}).values()
                        if p["id"] != post["id"] and int(p.get("create_at") or 0)
                        <= int(post.get("create_at") or 0) and not p.get("type")),
                       key=lambda p: int(p.get("create_at") or 0))
        names = await asyncio.to_thread(self._names, {p["user_id"] for p in posts})
        out = []
        for p in posts[-12:]:
            if p["user_id"] == self.me["id"]:
                out.append(("assistant", p.get("message", "")[:2000]))
            else:
                out.append(("user", f"@{names.get(p['user_id'], p['user_id'])}: "
                                    f"{p.get('message', '')[:2000]}"))
        return out

    def _names(self, user_ids: set[str]) -> dict[str, str]:
        with self.rt.db.session() as s:
            return {u.id: u.username for u in s.scalars(select(User).where(
                User.id.in_(list(user_ids))))}

    def _thread_conversation(self, channel_id: str, root_id: str, dm: bool) -> str | None:
        with self.rt.db.session() as s:
            if root_id:
                summary = s.scalar(select(BotPost).where(
                    ((BotPost.post_id == root_id) | (BotPost.root_id == root_id)),
                    BotPost.kind == "summary").order_by(BotPost.created_at.desc()))
                if summary is not None and summary.conversation_id:
                    return summary.conversation_id
            if dm:
                row = s.get(BotConversation, f"{channel_id}:{root_id}")
                quiet_ms = self.settings.bot_dm_memory_hours * 3_600_000
                if row is None or now_ms() - row.updated_at > quiet_ms:
                    return None  # a new conversation after a quiet spell
                return row.conversation_id
        return None

    def _remember(self, channel_id: str, root_id: str, user_id: str, conversation_id: str) -> None:
        with self.rt.db.session() as s:
            key = f"{channel_id}:{root_id}"
            row = s.get(BotConversation, key)
            if row is None:
                s.add(BotConversation(key=key, conversation_id=conversation_id, user_id=user_id,
                                      updated_at=now_ms()))
            else:
                row.conversation_id, row.updated_at = conversation_id, now_ms()
            s.commit()

    def _record(self, posts: list[str], *, channel_id: str, root_id: str, trigger_id: str,
                user_id: str, kind: str, answer_id: str | None, conversation_id: str | None) -> None:
        with self.rt.db.session() as s:
            for pid in posts:
                s.merge(BotPost(post_id=pid, channel_id=channel_id, root_id=root_id,
                                trigger_id=trigger_id, user_id=user_id, kind=kind,
                                answer_id=answer_id, conversation_id=conversation_id,
                                created_at=now_ms()))
            s.commit()

    async def _answer(self, post: dict, dm: bool) -> None:
        status = "failed"
        try:
            async with self.busy:
                await self.answer(post, dm)
            status = "done"
        except MattermostError:
            # Mattermost went away before the bot could reply: let the catch-up after the
            # reconnect take the post up again, unless a reply had already started
            status = "retry"
            raise
        finally:
            await asyncio.to_thread(self._finish, post["id"], status)

    def _finish(self, post_id: str, status: str) -> None:
        with self.rt.db.session() as s:
            row = s.get(BotTrigger, post_id)
            if row is None:
                return
            replied = s.scalar(select(BotPost.post_id).where(BotPost.trigger_id == post_id))
            # "retry": the next catch-up takes it up again (only if no reply was started)
            row.status = "failed" if status == "retry" and replied is not None else status
            s.commit()

    async def answer(self, post: dict, dm: bool) -> None:
        asker, channel_id = post["user_id"], post["channel_id"]
        root_id = post.get("root_id") or ("" if dm else post["id"])
        question = self._question(post.get("message") or "")
        if not question:
            await self.mm.create_post(channel_id, "Ask me a question after the mention, or type "
                                      "`/openops help`.", root_id=root_id)
            return
        await self.refresh_reader(asker)
        context = await self._thread_context(post)
        conv_key_root = post.get("root_id") or ""
        conversation_id = await asyncio.to_thread(self._thread_conversation, channel_id,
                                                  conv_key_root, dm)
        audience = None
        beyond = False
        if not dm:
            audience = await asyncio.to_thread(self._audience, channel_id)
            beyond = await asyncio.to_thread(self.rt.asker.beyond, asker, question, audience)
        done = await self.stream_answer(channel_id, root_id, asker, question, trigger=post["id"],
                                        audience=audience, context=context,
                                        conversation_id=conversation_id)
        if dm and done.get("conversation_id"):
            await asyncio.to_thread(self._remember, channel_id, conv_key_root, asker,
                                    done["conversation_id"])
        if beyond:
            # only the asker may learn that restricted material exists: an ephemeral post
            await self.mm.ephemeral(asker, channel_id, DM_HINT)
            dm_channel = await self.mm.direct_channel(self.me["id"], asker)
            await asyncio.to_thread(self.mirror.upsert_channel, dm_channel)
            where = await asyncio.to_thread(self._channel_name, channel_id)
            await self.stream_answer(dm_channel["id"], "", asker, question, trigger=post["id"],
                                     audience=None, context=context, conversation_id=None,
                                     header=f"_Fuller answer to your question in ~{where}:_\n\n")

    def _audience(self, channel_id: str):
        with self.rt.db.session() as s:
            return audience_scope(s, channel_id, include_archived=self.settings.include_archived)

    def can_read(self, user_id: str, channel_id: str) -> bool:
        """Whether the mirror lets ``user_id`` read ``channel_id`` now (unknown: no)."""
        with self.rt.db.session() as s:
            scope = readable_scope(s, user_id, include_archived=self.settings.include_archived)
            return channel_id in scope.channel_ids

    def _channel_name(self, channel_id: str) -> str:
        with self.rt.db.session() as s:
            ch = s.get(Channel, channel_id)
            return ch.name if ch else channel_id

    async def _answer_events(self, asker: str, question: str, conversation_id: str | None,
                             **options):
        """The answer's events. A follow-up on a conversation the asker may not read (a
        summary in a thread, drawn from channels they cannot see) is asked as a new question:
        the services answer such a conversation as not found, and the thread should get an
        answer, not an error naming a conversation."""
        events = self.rt.asker.events(asker, question, conversation_id, **options)
        try:
            first = await anext(events)
        except NotFound:
            if conversation_id is None:
                raise
            events = self.rt.asker.events(asker, question, None, **options)
            first = await anext(events)
        yield first
        async for ev in events:
            yield ev

    async def stream_answer(self, channel_id: str, root_id: str, asker: str, question: str, *,
                            trigger: str, audience, context, conversation_id,
                            header: str = "") -> dict:
        out = StreamPost(self, channel_id, root_id, header=header)
        await out.open()
        done: dict = {}
        try:
            sources: list[dict] = []
            async for ev in self._answer_events(asker, question, conversation_id,
                                                audience=audience, context=context):
                if ev.type == "token":
                    await out.feed(ev.data)
                elif ev.type == "sources":
                    sources = ev.data
                elif ev.type == "done":
                    done = ev.data
                elif ev.type == "error":
                    await out.close("\n\n" + warning(ev.data["error"], ev.data.get("status"),
                                                       ev.data.get("reference")))
                    return done
            await out.close(sources_block(sources),
                            allowed={s["permalink"] for s in sources if s.get("permalink")})
        except MattermostError:
            raise
        except Exception as exc:  # noqa: BLE001 - the post must never stop silently
            await out.close("\n\n" + failure_text(exc))
        finally:
            await asyncio.to_thread(self._record, out.posts, channel_id=channel_id,
                                    root_id=root_id, trigger_id=trigger, user_id=asker,
                                    kind="answer", answer_id=done.get("answer_id"),
                                    conversation_id=done.get("conversation_id"))
        return done

    async def stream_summary(self, post_in: str, root_id: str, asker: str, *, kind: str,
                             trigger: str, header: str | None = None, **params) -> dict:
        if header is None:
            name = await asyncio.to_thread(self._names, {asker})
            header = f"_Summary requested by @{name.get(asker, asker)}_\n\n"
        out = StreamPost(self, post_in, root_id, header=header)
        await out.open()
        done: dict = {}
        try:
            async for ev in self.rt.summaries.events(asker, kind, **params):
                if ev.type == "token":
                    await out.feed(ev.data)
                elif ev.type == "done":
                    done = ev.data
                elif ev.type == "error":
                    await out.close("\n\n" + warning(ev.data["error"], ev.data.get("status"),
                                                       ev.data.get("reference")))
                    return done
            await out.close("\n\n_Mention me in this thread to ask a follow-up._")
        except Exception as exc:  # noqa: BLE001 - the post must never stop silently
            await out.close(failure_text(exc))
        finally:
            await asyncio.to_thread(self._record, out.posts, channel_id=post_in,
                                    root_id=root_id or (out.posts[0] if out.posts else ""),
                                    trigger_id=trigger, user_id=asker, kind="summary",
                                    answer_id=done.get("answer_id"),
                                    conversation_id=done.get("conversation_id"))
        return done

    async def deliver_summary(self, requester: str, reader: str, summary: dict) -> str:
        """Send a summary made for ``reader`` (a role-targeted one) to them by DM; the DM's
        thread takes their follow-ups. Returns the post id."""
        from .alerts import open_dm

        reader_id = await asyncio.to_thread(self._user_id, reader)
        dm = await open_dm(self, reader_id)
        names = await asyncio.to_thread(self._names, {requester})
        who = names.get(requester, requester)
        out = StreamPost(self, dm["id"], "", header=f"_Summary for you, requested by @{who}_\n\n")
        await out.open()
        await out.feed(summary["summary"])
        await out.close("\n\n_Reply in this thread to ask a follow-up._")
        await asyncio.to_thread(self._record, out.posts, channel_id=dm["id"],
                                root_id=out.posts[0], trigger_id=f"for-{summary['answer_id']}",
                                user_id=reader_id, kind="summary",
                                answer_id=summary.get("answer_id"),
                                conversation_id=summary.get("conversation_id"))
        return out.posts[0]

    def _user_id(self, who: str) -> str:
        with self.rt.db.session() as s:
            return known_user(s, who).id

    def transcript_in_thread(self, root_id: str) -> str | None:
        with self.rt.db.session() as s:
            post_ids = select(Post.id).where((Post.id == root_id) | (Post.root_id == root_id))
            f = s.scalar(select(File).where(File.post_id.in_(post_ids), File.kind == "transcript",
                                            File.delete_at == 0))
            return f.id if f else None

    # ---- feedback -------------------------------------------------------------------------
    async def _feedback(self, reaction: dict) -> None:
        emoji, uid = reaction.get("emoji_name"), reaction.get("user_id")
        rating = "up" if emoji in UP else "down" if emoji in DOWN else None
        if rating is None or uid == self.me.get("id"):
            return

        def record() -> None:
            with self.rt.db.session() as s:
                row = s.get(BotPost, reaction.get("post_id"))
                answer_id = row.answer_id if row else None
            if answer_id:
                try:
                    self.rt.records.feedback(uid, answer_id, rating, f"reaction :{emoji}:")
                except OpenOpsError as exc:
                    log.info("reaction by %s not recorded: %s", uid, exc)

        await asyncio.to_thread(record)
