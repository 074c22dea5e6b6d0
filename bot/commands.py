"""``/openops`` slash commands, served at ``POST /mattermost/command``.

Mattermost posts the form fields documented in the slash-command reference (channel_id,
team_id, user_id, text, token, response_url, ...) with ``Authorization: Token <token>``. There
is no thread (root_id) among them: a thread is named in the text, by a post's permalink or id,
and that post must be in the command's channel and readable by the user. The
token is checked first; the reply comes at once (Mattermost waits 3 seconds at most) and the
work continues in the background, posting through the bot's own account."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import shlex
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("openops.bot.commands")

HELP = """**OpenOps** answers from what you may read in Mattermost, with sources.
- `/openops ask QUESTION`: an answer only you can see, from everything you may read.
- `/openops summarize`: what you missed in this channel since you last viewed it, or
  `--days N`; `/openops summarize POST` (a post's link, "Copy Link", or its id): that post's
  thread. Mention @{bot} in the summary's thread to ask a follow-up.
- `/openops react`: I react to the last message of this channel with an emoji for its mood.
- `/openops watch TOPIC`: a direct message when a new thread matches TOPIC, in channels you may
  read (once per thread, at most a few a day); `/openops watch list`; `/openops unwatch N`.
- `/openops catchup on|off`: a summary by direct message of what you missed when you join a
  channel or come back to one after a few days.
- `/openops help`: this message.
Mention @{bot} in any thread to ask there (I answer only from what everyone in that channel
may read), or send me a direct message (I use everything you may read and remember the
conversation). React :+1: or :-1: to my answers to tell the team how I did."""


POST_REF = re.compile(r"^(?:\S*/pl/)?([a-z0-9]{26})/?$")
USAGE_SUMMARIZE = ("Usage: `/openops summarize`, `/openops summarize --days N` or "
                   "`/openops summarize POST` (a post's link or id)")
NO_SUCH_POST = "I cannot find that post in this channel."


def post_ref(arg: str) -> str | None:
    """A post id from ``arg``: a permalink (``https://chat/team/pl/<id>``) or a bare id."""
    m = POST_REF.match(arg.strip())
    return m.group(1) if m else None


def ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _args(text: str) -> tuple[str, list[str]]:
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    if not parts:
        return "help", []
    return parts[0].lower(), parts[1:]


async def _fields(request: Request) -> dict[str, str]:
    """The command's fields: form-encoded for POST (Mattermost's default), query for GET."""
    if request.method == "GET":
        return dict(request.query_params)
    body = (await request.body()).decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body, keep_blank_values=True))


def router(get_bot, settings) -> APIRouter:
    r = APIRouter()

    @r.get("/mattermost/command", include_in_schema=False)
    @r.post("/mattermost/command", tags=["mattermost"],
            summary="Mattermost slash command endpoint (/openops)")
    async def command(request: Request):
        fields = await _fields(request)
        header = request.headers.get("authorization", "")
        given = fields.get("token") or (header[6:] if header.lower().startswith("token ") else "")
        want = settings.mattermost_command_token
        if not want:
            return JSONResponse(status_code=503, content={
                "error": "slash commands are not configured: set OPENOPS_MATTERMOST_COMMAND_TOKEN "
                         "to the token Mattermost shows for the /openops command"})
        if not given or not hmac.compare_digest(given, want):
            return JSONResponse(status_code=401, content={
                "error": "wrong or missing command token: it must match "
                         "OPENOPS_MATTERMOST_COMMAND_TOKEN"})
        bot = get_bot()
        if bot is None:
            return ephemeral("OpenOps is not connected to Mattermost right now; try again in a "
                             "minute or tell your admin (OPENOPS_MATTERMOST_URL/TOKEN).")
        missing = [k for k in ("user_id", "channel_id") if not fields.get(k)]
        if missing:
            return JSONResponse(status_code=400, content={
                "error": f"missing form fields: {', '.join(missing)}"})
        sub, args = _args(fields.get("text", ""))
        name = bot.me.get("username", "openops")
        if sub == "help":
            return ephemeral(HELP.format(bot=name))
        if sub == "ask":
            question = " ".join(args).strip()
            if not question:
                return ephemeral("Usage: `/openops ask QUESTION`")
            bot._spawn(_ask(bot, fields, question), "command-ask")
            return ephemeral(f"Looking into it: _{question[:200]}_")
        if sub in ("summarize", "summarise", "summary"):
            days, post_id = None, None
            if len(args) == 2 and args[0] == "--days":
                try:
                    days = float(args[1])
                    if not 0 < days <= 3650:
                        raise ValueError
                except ValueError:
                    return ephemeral("`--days` takes a number of days between 1 and 3650.")
            elif len(args) == 1 and post_ref(args[0]):
                post_id = post_ref(args[0])
            elif args:
                return ephemeral(USAGE_SUMMARIZE)
            bot._spawn(_summarize(bot, fields, days, post_id), "command-summarize")
            return ephemeral("Summarising; it will appear in a moment.")
        if sub in ("watch", "unwatch", "catchup"):
            return ephemeral(await _personal(bot, fields["user_id"], sub, args))
        if sub == "react":
            bot._spawn(_react(bot, fields), "command-react")
            return ephemeral("Reading the room…")
        return ephemeral(f"Unknown command `{sub}`. " + HELP.format(bot=name))

    return r


USAGE_WATCH = "Usage: `/openops watch TOPIC`, `/openops watch list` or `/openops unwatch N`"


async def _personal(bot, uid: str, sub: str, args: list[str]) -> str:
    """Watches and the catch-up opt-in: the reader's own settings, answered at once."""
    from rag.errors import OpenOpsError

    await bot.refresh_reader(uid)  # the mirror must know who they are
    try:
        return await asyncio.to_thread(_personal_now, bot, uid, sub, args)
    except OpenOpsError as exc:
        return f":warning: {exc}"


def _personal_now(bot, uid: str, sub: str, args: list[str]) -> str:
    from rag.guard import guard_markdown

    from .catchup import set_catchup

    watches = bot.rt.watches
    if sub == "catchup":
        if len(args) != 1 or args[0].lower() not in ("on", "off"):
            return "Usage: `/openops catchup on` or `/openops catchup off`"
        on = args[0].lower() == "on"
        set_catchup(bot.rt.db, uid, on)
        s = bot.settings
        return (f"Catch-ups are on: when you join a channel, or come back to one after "
                f"{s.catchup_away_days:g} days with at least {s.catchup_min_posts} new posts, I "
                "send you a summary of what you missed (once per channel a day)."
                if on else "Catch-ups are off.")
    if sub == "unwatch":
        if len(args) != 1 or not args[0].lstrip("#").isdigit():
            return USAGE_WATCH
        gone = watches.remove(uid, int(args[0].lstrip("#")))
        return guard_markdown(f"Stopped watching #{gone['id']} _{gone['topic']}_.")
    if not args:
        return USAGE_WATCH
    if len(args) == 1 and args[0].lower() == "list":
        _, mine = watches.list_for(uid)
        if not mine:
            return "You watch nothing yet: `/openops watch TOPIC`."
        lines = [f"- #{w['id']} {w['topic']}" + (" (from your profile's interests)"
                                                 if w["from_profile"] else "") for w in mine]
        return guard_markdown("**Your watches** (`/openops unwatch N` stops #N):\n"
                              + "\n".join(lines))
    w = watches.add(uid, " ".join(args))
    return guard_markdown(f"Watching #{w['id']} _{w['topic']}_: I will send you a direct "
                          "message when a new thread about it appears where you may read.")


async def _ask(bot, f: dict, question: str) -> None:
    """Only the asker sees the answer (an ephemeral post), so their full scope applies."""
    from rag.generation import collect
    from rag.guard import defang_mentions

    from .bot import failure_text, sources_block

    try:
        await bot.refresh_reader(f["user_id"])
        async with bot.busy:
            text, sources, _ = await collect(bot.rt.asker.events(f["user_id"], question))
        msg = defang_mentions(text) + sources_block(sources)
    except Exception as exc:  # noqa: BLE001 - tell the user, never fail silently
        log.exception("/openops ask failed")
        msg = failure_text(exc)
    await bot.mm.ephemeral(f["user_id"], f["channel_id"], msg[: bot.settings.bot_post_limit])


async def _summarize(bot, f: dict, days: float | None, post_id: str | None) -> None:
    uid, cid = f["user_id"], f["channel_id"]
    try:
        await bot.refresh_reader(uid)
        root = await _thread_root(bot, uid, cid, post_id) if post_id else ""
        if post_id and not root:
            await bot.mm.ephemeral(uid, cid, NO_SUCH_POST)
            return
        async with bot.busy:
            await _summary(bot, uid, cid, root, days)
    except Exception as exc:  # noqa: BLE001
        from .bot import failure_text

        await bot.mm.ephemeral(uid, cid, failure_text(exc))


async def _thread_root(bot, uid: str, cid: str, post_id: str) -> str:
    """The root of ``post_id``'s thread if the post is in channel ``cid`` and ``uid`` may read
    it, else "" (one answer for "no such post" and "not yours to read": no existence leak)."""
    from ingest.mattermost.client import MattermostError

    try:
        post = await bot.mm.post_by_id(post_id)
    except MattermostError:
        return ""
    if post.get("channel_id") != cid or post.get("delete_at"):
        return ""
    if not await asyncio.to_thread(bot.can_read, uid, cid):
        return ""
    return post.get("root_id") or post["id"]


async def _summary(bot, uid: str, cid: str, root: str, days: float | None) -> None:
    """In a thread: the thread (or the meeting, when a transcript is attached); in a channel:
    since the user last viewed it, or the last ``days``."""
    if root:
        transcript = await asyncio.to_thread(bot.transcript_in_thread, root)
        if transcript:
            await bot.stream_summary(cid, root, uid, kind="meeting", trigger=root,
                                     file_id=transcript)
        else:
            await bot.stream_summary(cid, root, uid, kind="thread", trigger=root, thread_id=root)
        return
    since = None
    if days is None:
        member = await bot.mm.channel_member(cid, uid)
        viewed = int(member.get("last_viewed_at") or 0)
        since = viewed + 1 if viewed else None  # what they saw ends at last_viewed_at
        if since is None:
            days = 7.0
    await bot.stream_summary(cid, "", uid, kind="channel", trigger=f"cmd-{time.time_ns()}",
                             channel_id=cid, since=since, days=days)


async def _react(bot, f: dict) -> None:
    from .sentiment import emoji_for

    uid, cid = f["user_id"], f["channel_id"]
    try:
        got = await bot.mm.posts_page(cid, per_page=30)
        posts = sorted((p for p in got.get("posts", {}).values()
                        if not p.get("type") and p.get("user_id") != bot.me["id"]
                        and (p.get("message") or "").strip()),
                       key=lambda p: int(p.get("create_at") or 0))
        if not posts:
            await bot.mm.ephemeral(uid, cid, "There is no message here to react to.")
            return
        last = posts[-1]
        emoji = await asyncio.to_thread(emoji_for, last["message"])
        await bot.mm.react(last["id"], emoji)
    except Exception as exc:  # noqa: BLE001
        log.exception("/openops react failed")
        await bot.mm.ephemeral(uid, cid, f":warning: I could not react ({exc.__class__.__name__}); "
                               "an admin can find the reason in the OpenOps log.")
