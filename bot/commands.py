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
- `/openops summarize --for @user1,@user2` (with `--days N` or `POST`): one summary per person,
  each from what both you and they may read, shaped for them and sent to them by DM.
- `/openops profile [show | interests TEXT | off | on]`: what shapes your summaries (and where
  it came from), your stated interests, personalisation off or on.
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
                   "`/openops summarize POST` (a post's link or id), each optionally with "
                   "`--for @user1,@user2`")
USAGE_PROFILE = "Usage: `/openops profile [show | interests TEXT | off | on]`"
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
            parsed = summarize_args(args)
            if isinstance(parsed, str):
                return ephemeral(parsed)
            days, post_id, readers = parsed
            if readers:
                bot._spawn(_summarize(bot, fields, days, post_id, readers),
                           "command-summarize-for")
                return ephemeral(f"Summarising for {', '.join('@' + r for r in readers)}; "
                                 "each gets theirs by direct message.")
            bot._spawn(_summarize(bot, fields, days, post_id), "command-summarize")
            return ephemeral("Summarising; it will appear in a moment.")
        if sub == "profile":
            return ephemeral(await _profile(bot, fields, args))
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

    watches = bot.rt.watches
    if sub == "catchup":
        if len(args) != 1 or args[0].lower() not in ("on", "off"):
            return "Usage: `/openops catchup on` or `/openops catchup off`"
        on = args[0].lower() == "on"
        bot.rt.profiles.update(uid, catchup=on)  # the profile row, made with its defaults
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


def summarize_args(args: list[str]) -> tuple[float | None, str | None, list[str]] | str:
    """(days, post id, readers) from ``summarize`` arguments, or the usage to show."""
    days, post_id, readers = None, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--days" and i + 1 < len(args):
            try:
                days = float(args[i + 1])
                if not 0 < days <= 3650:
                    raise ValueError
            except ValueError:
                return "`--days` takes a number of days between 1 and 3650."
            i += 2
        elif a == "--for" and i + 1 < len(args):
            # "@a,@b", "@a, @b" or "@a @b": every following name until the next option
            j = i + 1
            while j < len(args) and not args[j].startswith("--") and not post_ref(args[j]):
                readers += [r.strip().lstrip("@") for r in args[j].split(",") if r.strip(" @")]
                j += 1
            i = j
        elif post_ref(a) and post_id is None:
            post_id = post_ref(a)
            i += 1
        else:
            return USAGE_SUMMARIZE
    if days is not None and post_id:
        return USAGE_SUMMARIZE
    readers = list(dict.fromkeys(readers))
    if len(readers) > 20:
        return "`--for` takes at most 20 people."
    return days, post_id, readers


async def _profile(bot, f: dict, args: list[str]) -> str:
    """``/openops profile``: shown only to the reader (an ephemeral reply)."""
    from rag.guard import defang_mentions, guard_markdown

    uid = f["user_id"]
    sub = args[0].lower() if args else "show"
    rt = bot.rt
    if sub == "interests":
        text = " ".join(args[1:]).strip()
        if len(text) > 2000:
            return "Interests: at most 2,000 characters."
        await asyncio.to_thread(rt.profiles.update, uid, interests=text)
        return (f"Your interests are now: _{defang_mentions(text)}_" if text else
                "Your stated interests are cleared.")
    if sub in ("off", "on"):
        await asyncio.to_thread(rt.profiles.update, uid, personalize=sub == "on")
        return ("Personalisation is on: summaries put what matters to you first."
                if sub == "on" else "Personalisation is off: you get the generic summary everywhere.")
    if sub != "show" or len(args) > 1:
        return USAGE_PROFILE
    await bot.refresh_reader(uid)

    def read():
        user, scope = rt.summaries.user_scope(uid)
        return rt.profiles.build(user, scope, vector=False)

    prof = await asyncio.to_thread(read)
    lines = [f"**Your OpenOps profile** (personalisation {'on' if prof.personalize else 'off'}, "
             f"catch-ups {'on' if prof.catchup else 'off'})",
             f"Summaries are shaped {prof.why}.",
             "Stated interests: " + (prof.interests or
                                     "_none; set them with `/openops profile interests TEXT`_"),
             "", "What shapes it most (only from what you may read now):"]
    for sig in prof.signals[:12]:
        item = sig.public()
        lines.append(f"- {item['kind']} ({item['weight']}): {item['text']} — {item['source']}")
    return guard_markdown(defang_mentions("\n".join(lines))[:bot.settings.bot_post_limit])


async def _summarize_for(bot, uid: str, cid: str, root: str, readers: list[str],
                         days: float | None) -> None:
    """One summary per reader, each from what both may read, each sent to its reader; the
    asker is told (ephemerally) who got one."""
    from rag.summaries import collect_summary

    kind, params = await _what(bot, uid, cid, root, days if days is not None else 7.0)
    lines = []
    for reader in readers:
        try:
            await bot.refresh_reader(reader)
            async with bot.busy:
                summary = await collect_summary(bot.rt.summaries.events(
                    uid, kind, for_user=reader, **params))
            await bot.deliver_summary(uid, summary["for"], summary)
            lines.append(f"- @{summary['for']}: sent by direct message")
        except Exception as exc:  # noqa: BLE001 - one reader's failure is not the rest's
            lines.append(f"- @{reader}: not sent ({exc})")
    await bot.mm.ephemeral(uid, cid, "Summaries:\n" + "\n".join(lines))


async def _what(bot, uid: str, cid: str, root: str, days: float | None) -> tuple[str, dict]:
    """What a summary in this place covers: the thread (or its meeting), else the channel."""
    if root:
        transcript = await asyncio.to_thread(bot.transcript_in_thread, root)
        if transcript:
            return "meeting", {"file_id": transcript}
        return "thread", {"thread_id": root}
    return "channel", {"channel_id": cid, "days": days}


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


async def _summarize(bot, f: dict, days: float | None, post_id: str | None,
                     readers: list[str] | None = None) -> None:
    """The summary here (a thread when a post is named), or with ``readers`` one for each."""
    uid, cid = f["user_id"], f["channel_id"]
    try:
        await bot.refresh_reader(uid)
        root = await _thread_root(bot, uid, cid, post_id) if post_id else ""
        if post_id and not root:
            await bot.mm.ephemeral(uid, cid, NO_SUCH_POST)
            return
        if readers:
            await _summarize_for(bot, uid, cid, root, readers, days)
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
    # posted where others read it: what shapes it for the asker must be theirs to see too
    audience = None if await asyncio.to_thread(bot.mirror.is_bot_dm, cid) else cid
    if root:
        kind, params = await _what(bot, uid, cid, root, None)
        await bot.stream_summary(cid, root, uid, kind=kind, trigger=root, audience=audience,
                                 **params)
        return
    since = None
    if days is None:
        member = await bot.mm.channel_member(cid, uid)
        viewed = int(member.get("last_viewed_at") or 0)
        since = viewed + 1 if viewed else None  # what they saw ends at last_viewed_at
        if since is None:
            days = 7.0
    await bot.stream_summary(cid, "", uid, kind="channel", trigger=f"cmd-{time.time_ns()}",
                             channel_id=cid, since=since, days=days, audience=audience)


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
