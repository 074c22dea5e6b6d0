"""Re-reading what a user or a channel is now, through REST, into the mirror: WebSocket events
about channels the bot is not in never reach it, so every question (the bot's and the API's)
re-reads the asker first, through :meth:`Refresher.refresh_reader`."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from rag.permissions import find_user

from .client import Mattermost, MattermostError
from .mirror import Mirror
from .sync import PER_PAGE, pages

log = logging.getLogger("openops.mattermost.refresh")

_ID = re.compile(r"^[a-z0-9]{26}$")


class Refresher:
    """``refresh_s``: a user re-read less than this many seconds ago is not read again (one
    question after another costs one round of REST calls, not one each)."""

    def __init__(self, mm: Mattermost, mirror: Mirror, *, refresh_s: float = 30.0):
        self.mm = mm
        self.mirror = mirror
        self.refresh_s = refresh_s
        self._fresh: dict[str, float] = {}  # user id -> when last re-read (monotonic)
        self._locks: dict[str, asyncio.Lock] = {}

    async def refresh_channel(self, channel_id: str) -> None:
        """The channel and its members, read now (a channel first seen, created or converted)."""
        try:
            ch = await self.mm.channel(channel_id)
            await asyncio.to_thread(self.mirror.upsert_channel, ch)
            members = await pages(lambda n: self.mm.channel_members_page(channel_id, n, PER_PAGE))
            await asyncio.to_thread(self.mirror.set_channel_members, channel_id, members)
        except MattermostError as exc:
            log.warning("refreshing channel %s failed: %s", channel_id, exc)

    async def refresh_reader(self, who: str) -> str | None:
        """Bring one asker's teams, channel memberships and roles up to date (by username,
        ``@username`` or id), unless done within ``refresh_s``; their id, or None when the
        server does not know them either (the caller's own "unknown user" applies)."""
        user_id = await asyncio.to_thread(self._known, who)
        if user_id is None:
            user = await self._lookup(who)
            if user is None:
                return None
            user_id = user["id"]
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:  # concurrent questions of one user: one re-read
            if not self._due(user_id):
                return user_id
            ok = await self.refresh_user(user_id)
            # a failed re-read is tried again after a few seconds, not on every question
            # (while Mattermost is down each would wait for the client's retries)
            self._fresh[user_id] = time.monotonic() - (0 if ok else max(0.0, self.refresh_s - 5))
        return user_id

    def _due(self, user_id: str) -> bool:
        at = self._fresh.get(user_id)
        return at is None or time.monotonic() - at >= self.refresh_s

    def _known(self, who: str) -> str | None:
        with self.mirror.db.session() as s:
            user = find_user(s, who)
            return user.id if user is not None else None

    async def _lookup(self, who: str) -> dict | None:
        name = who.strip().removeprefix("@")
        try:
            if _ID.match(name):
                try:
                    return await self.mm.user(name)
                except MattermostError as exc:
                    if exc.status != 404:
                        raise
            return await self.mm.get(f"/api/v4/users/username/{name}")
        except MattermostError as exc:
            if exc.status not in (400, 404):
                log.warning("looking up @%s in Mattermost failed: %s", name, exc)
            return None

    async def refresh_user(self, user_id: str) -> bool:
        """The user, their teams and channels, read from the server now; False (the mirror
        stays as it is, and says why in the log) when Mattermost cannot be read."""
        try:
            user = await self.mm.user(user_id)
            await asyncio.to_thread(self.mirror.upsert_user, user)
            teams = await self.mm.get(f"/api/v4/users/{user_id}/teams")
            members = await self.mm.get(f"/api/v4/users/{user_id}/teams/members")
            channels: list[dict] = []
            for t in teams:
                await asyncio.to_thread(self.mirror.upsert_team, t)
                channels += await self.mm.get(f"/api/v4/users/{user_id}/teams/{t['id']}/channels")
            channels += [c for c in await self.mm.user_channels(user_id)
                         if c.get("type") in ("D", "G")]
            await asyncio.to_thread(self.mirror.set_user_view, user_id, members, channels)
            return True
        except MattermostError as exc:
            log.warning("refreshing @%s's permissions failed (%s): using the mirror as is",
                        user_id, exc)
            return False
