"""Catch-ups: a reader who opted in (``/openops catchup on``, the profile's ``catchup``) and
joins a channel, or comes back to one after ``OPENOPS_CATCHUP_AWAY_DAYS`` with at least
``OPENOPS_CATCHUP_MIN_POSTS`` posts since their previous view, gets a summary of what they
missed by DM from the bot, at most once per channel per (UTC) day.

The previous view is the mirror's ``ChannelMember.last_viewed_at`` (kept from the server's
ChannelMember objects), read before the view that brings the reader back moves it. A view
arrives as a ``channel_viewed`` event (``data.channel_id``, ``broadcast.user_id``) where the
bot hears one; Mattermost sends that event to the viewer alone, so for other readers the bot
also counts their own post in the channel as a view (Mattermost marks the channel viewed for
the poster, too). A join arrives as ``user_added``; its catch-up covers the last
``OPENOPS_CATCHUP_AWAY_DAYS``.

The catch-up is claimed (a ``catchups`` row, keyed by reader, channel and day) before
anything is posted: a second view that day, or a restart, sends nothing again."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rag.db import Catchup, Channel, Post, ProfileSettings, User
from rag.permissions import readable_scope
from rag.util import now_ms
from rag.watches import utc_day

from .alerts import open_dm

log = logging.getLogger("openops.bot.catchup")

DAY_MS = 86_400_000


class Catchups:
    def __init__(self, bot):
        self.bot = bot
        self.sent = 0
        # decisions made (sent or not) per (reader, channel): what tests wait on
        self.decided: dict[tuple[str, str], int] = {}

    def _plan(self, user_id: str, channel_id: str, prev_view: int | None, joined: bool
              ) -> tuple[int, int, str] | None:
        """(since, posts missed, day) when a catch-up is due and claimed, else None."""
        settings = self.bot.settings
        now = now_ms()
        away = int(settings.catchup_away_days * DAY_MS)
        with self.bot.rt.db.session() as s:
            user = s.get(User, user_id)
            profile = s.get(ProfileSettings, user_id)
            ch = s.get(Channel, channel_id)
            if (user is None or user.is_bot or profile is None or not profile.catchup
                    or ch is None or ch.type not in ("O", "P")):
                return None
            if joined:
                since = now - away
            elif not prev_view or now - prev_view < away:
                return None  # never seen viewing (unknown: no guess), or not away long enough
            else:
                since = prev_view + 1
            scope = readable_scope(s, user_id, include_archived=settings.include_archived)
            if not scope.allows(channel_id):
                return None
            missed = s.scalar(select(func.count()).select_from(Post).where(
                Post.channel_id == channel_id, Post.create_at >= since, Post.delete_at == 0,
                Post.user_id != user_id))
            if missed < settings.catchup_min_posts:
                return None
            day = utc_day(now)
            s.add(Catchup(user_id=user_id, channel_id=channel_id, day=day, status="sending",
                          since=since, posts=int(missed), created_at=now))
            try:
                s.commit()
            except IntegrityError:
                return None  # sent (or being sent) today already
            return since, int(missed), day

    def _finish(self, user_id: str, channel_id: str, day: str, status: str) -> None:
        with self.bot.rt.db.session() as s:
            row = s.get(Catchup, (user_id, channel_id, day))
            if row is not None:
                row.status = status
                s.commit()

    async def consider(self, user_id: str, channel_id: str, prev_view: int | None, *,
                       joined: bool = False) -> bool:
        """Send the catch-up if one is due; whether it was sent."""
        try:
            return await self._consider(user_id, channel_id, prev_view, joined)
        finally:
            key = (user_id, channel_id)
            self.decided[key] = self.decided.get(key, 0) + 1

    async def _consider(self, user_id: str, channel_id: str, prev_view: int | None,
                        joined: bool) -> bool:
        bot = self.bot
        if not user_id or user_id == bot.me.get("id"):
            return False
        if not await asyncio.to_thread(self._worth, user_id, channel_id, prev_view, joined):
            return False
        await bot.refresh_reader(user_id)  # what they may read now, from the server
        plan = await asyncio.to_thread(self._plan, user_id, channel_id, prev_view, joined)
        if plan is None:
            return False
        since, missed, day = plan
        status = "skipped"
        try:
            dm = await open_dm(bot, user_id)
            where = await asyncio.to_thread(bot._channel_name, channel_id)
            what = "since you joined" if joined else "while you were away"
            async with bot.busy:
                done = await bot.stream_summary(
                    dm["id"], "", user_id, kind="channel",
                    trigger=f"catchup:{channel_id}:{user_id}:{day}",
                    header=f"_Catch-up: {missed} posts in ~{where} {what}_\n\n",
                    channel_id=channel_id, since=since, actor="bot:catchup")
            status = "sent" if done.get("answer_id") else "skipped"
        except Exception:  # noqa: BLE001 - never retried today: at most one DM
            log.exception("catch-up of %s in %s failed", user_id, channel_id)
        finally:
            await asyncio.to_thread(self._finish, user_id, channel_id, day, status)
        if status == "sent":
            self.sent += 1
        return status == "sent"

    def _worth(self, user_id: str, channel_id: str, prev_view: int | None, joined: bool
               ) -> bool:
        """The cheap part of :meth:`_plan`, before the reader's permissions are re-read: opted
        in, a channel (not a DM), away long enough."""
        away = int(self.bot.settings.catchup_away_days * DAY_MS)
        if not joined and (not prev_view or now_ms() - prev_view < away):
            return False
        with self.bot.rt.db.session() as s:
            row = s.get(ProfileSettings, user_id)
            ch = s.get(Channel, channel_id)
            return bool(row is not None and row.catchup and ch is not None
                        and ch.type in ("O", "P"))
