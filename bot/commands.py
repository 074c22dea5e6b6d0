"""``/openops`` slash commands, served at ``POST /mattermost/command``.

Mattermost posts the form fields documented in the slash-command reference (channel_id,
team_id, user_id, text, token, response_url, ...) with ``Authorization: Token <token>``. The
token is checked first; the reply comes at once (Mattermost waits 3 seconds at most) and the
work continues in the background, posting through the bot's own account."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import shlex
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("openops.bot.commands")

HELP = """**OpenOps** answers from what you may read in Mattermost, with sources.
- `/openops ask QUESTION`: an answer only you can see, from everything you may read.
- `/openops summarize`: in a thread, the thread; in a channel, what you missed since you last
  viewed it, or `--days N`. Mention @{bot} in the summary's thread to ask a follow-up.
- `/openops react`: I react to the last message of this thread or channel with an emoji for its mood.
- `/openops help`: this message.
Mention @{bot} in any thread to ask there (I answer only from what everyone in that channel
may read), or send me a direct message (I use everything you may read and remember the
conversation). React :+1: or :-1: to my answers to tell the team how I did."""


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
            days = None
            if args:
                if args[0] != "--days" or len(args) != 2:
                    return ephemeral("Usage: `/openops summarize` or `/openops summarize --days N`")
                try:
                    days = float(args[1])
                    if not 0 < days <= 3650:
                        raise ValueError
                except ValueError:
                    return ephemeral("`--days` takes a number of days between 1 and 3650.")
            bot._spawn(_summarize(bot, fields, days), "command-summarize")
            return ephemeral("Summarising; it will appear in a moment.")
        if sub == "react":
            bot._spawn(_react(bot, fields), "command-react")
            return ephemeral("Reading the room…")
        return ephemeral(f"Unknown command `{sub}`. " + HELP.format(bot=name))

    return r


async def _ask(bot, f: dict, question: str) -> None:
    """Only the asker sees the answer (an ephemeral post), so their full scope applies."""
    from rag.generation import collect

    from .bot import defang, sources_block

    try:
        await bot.refresh_user(f["user_id"])
        async with bot.busy:
            text, sources, _ = await collect(bot.rt.asker.events(f["user_id"], question))
        msg = defang(text) + sources_block(sources)
    except Exception as exc:  # noqa: BLE001 - tell the user, never fail silently
        log.exception("/openops ask failed")
        msg = f":warning: {exc}"
    await bot.mm.ephemeral(f["user_id"], f["channel_id"], msg[: bot.settings.bot_post_limit],
                           root_id=f.get("root_id", ""))


async def _summarize(bot, f: dict, days: float | None) -> None:
    uid, cid, root = f["user_id"], f["channel_id"], f.get("root_id", "")
    try:
        await bot.refresh_user(uid)
        async with bot.busy:
            await _summary(bot, uid, cid, root, days)
    except Exception as exc:  # noqa: BLE001
        log.exception("/openops summarize failed")
        await bot.mm.ephemeral(uid, cid, f":warning: The summary failed: {exc}", root_id=root)


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

    uid, cid, root = f["user_id"], f["channel_id"], f.get("root_id", "")
    try:
        if root:
            got = await bot.mm.thread(root)
        else:
            got = await bot.mm.posts_page(cid, per_page=30)
        posts = sorted((p for p in got.get("posts", {}).values()
                        if not p.get("type") and p.get("user_id") != bot.me["id"]
                        and (p.get("message") or "").strip()),
                       key=lambda p: int(p.get("create_at") or 0))
        if not posts:
            await bot.mm.ephemeral(uid, cid, "There is no message here to react to.", root_id=root)
            return
        last = posts[-1]
        emoji = await asyncio.to_thread(emoji_for, last["message"])
        await bot.mm.react(last["id"], emoji)
    except Exception as exc:  # noqa: BLE001
        log.exception("/openops react failed")
        await bot.mm.ephemeral(uid, cid, f":warning: I could not react: {exc}", root_id=root)
