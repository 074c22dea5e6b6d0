"""Re-reading what a user or a channel is now, through REST, into the mirror: WebSocket events
about channels the bot is not in never reach it, so a question re-reads the asker first."""

from __future__ import annotations

import asyncio
import logging

from .client import Mattermost, MattermostError
from .mirror import Mirror
from .sync import PER_PAGE, pages

log = logging.getLogger("openops.mattermost.refresh")


class Refresher:
    def __init__(self, mm: Mattermost, mirror: Mirror):
        self.mm = mm
        self.mirror = mirror

    async def refresh_channel(self, channel_id: str) -> None:
        """The channel and its members, read now (a channel first seen, created or converted)."""
        try:
            ch = await self.mm.channel(channel_id)
            await asyncio.to_thread(self.mirror.upsert_channel, ch)
            members = await pages(lambda n: self.mm.channel_members_page(channel_id, n, PER_PAGE))
            await asyncio.to_thread(self.mirror.set_channel_members, channel_id, members)
        except MattermostError as exc:
            log.warning("refreshing channel %s failed: %s", channel_id, exc)

    async def refresh_user(self, user_id: str) -> None:
        """The user, their teams and channels, read from the server now."""
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
        except MattermostError as exc:
            log.warning("refreshing @%s's permissions failed (%s): using the mirror as is",
                        user_id, exc)
