"""WebSocket events to the mirror: one handler per event type that changes content or
permissions, applied in arrival order. The bot adds what happens in conversations (answers,
reactions) on top of this table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from rag.util import now_ms

from .client import Mattermost
from .mirror import Mirror
from .refresh import Refresher
from .sync import Syncer

Handler = Callable[[dict, dict], Awaitable[None]]


def json_field(value):
    """``data.post``, ``data.reaction``, ``data.channel`` arrive as JSON strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class EventMirror:
    """``handle(event)`` applies one event; ``spawn`` runs slower follow-ups (a team's sync,
    a user's re-read, attachments) off the event queue."""

    def __init__(self, mm: Mattermost, mirror: Mirror, syncer: Syncer, refresher: Refresher,
                 spawn: Callable[[Coroutine[Any, Any, Any], str], Any], bot_id: Callable[[], str]):
        self.mm = mm
        self.mirror = mirror
        self.syncer = syncer
        self.refresher = refresher
        self.spawn = spawn
        self.bot_id = bot_id
        self.handlers: dict[str, Handler] = {
            "posted": self.posted,
            "post_edited": self.post_edited,
            "post_deleted": self.post_deleted,
            "reaction_added": self.reaction_added,
            "reaction_removed": self.reaction_removed,
            "channel_created": self.channel_refresh,
            "channel_converted": self.channel_refresh,
            "channel_restored": self.channel_refresh,
            "direct_added": self.channel_refresh,
            "group_added": self.channel_refresh,
            "channel_updated": self.channel_updated,
            "channel_deleted": self.channel_deleted,
            "user_added": self.user_added,
            "user_removed": self.user_removed,
            "added_to_team": self.added_to_team,
            "leave_team": self.leave_team,
            "user_updated": self.user_updated,
            "new_user": self.new_user,
        }

    async def handle(self, event: dict) -> None:
        handler = self.handlers.get(event.get("event") or "")
        if handler is not None:
            await handler(event.get("data") or {}, event.get("broadcast") or {})

    async def ensure_channel(self, channel_id: str) -> None:
        if not await asyncio.to_thread(self.mirror.known_channel, channel_id):
            await self.refresher.refresh_channel(channel_id)

    # ---- reactions (what a reader endorses, for their profile) -----------------------------
    async def reaction_added(self, data: dict, bc: dict) -> None:
        reaction = json_field(data.get("reaction"))
        if reaction:
            await asyncio.to_thread(self.mirror.apply_reaction, reaction, added=True)

    async def reaction_removed(self, data: dict, bc: dict) -> None:
        reaction = json_field(data.get("reaction"))
        if reaction:
            await asyncio.to_thread(self.mirror.apply_reaction, reaction, added=False)

    # ---- posts ----------------------------------------------------------------------------
    async def posted(self, data: dict, bc: dict) -> None:
        post = json_field(data.get("post"))
        if post:
            await self.ensure_channel(post["channel_id"])
            await asyncio.to_thread(self.mirror.apply_posts, [post])
            if post.get("file_ids") and self.mirror.wants(post):
                self.spawn(self.syncer.files(post), "files")

    async def post_edited(self, data: dict, bc: dict) -> None:
        post = json_field(data.get("post"))
        if post:
            await asyncio.to_thread(self.mirror.apply_posts, [post])

    async def post_deleted(self, data: dict, bc: dict) -> None:
        post = json_field(data.get("post"))
        if post:
            await asyncio.to_thread(self.mirror.delete_post, post)

    # ---- channels -------------------------------------------------------------------------
    async def channel_refresh(self, data: dict, bc: dict) -> None:
        cid = data.get("channel_id") or bc.get("channel_id")
        if cid:
            await self.refresher.refresh_channel(cid)

    async def channel_updated(self, data: dict, bc: dict) -> None:
        ch = json_field(data.get("channel"))
        if ch:
            await asyncio.to_thread(self.mirror.upsert_channel, ch)

    async def channel_deleted(self, data: dict, bc: dict) -> None:
        cid = data.get("channel_id") or bc.get("channel_id")
        if cid:
            await asyncio.to_thread(self.mirror.set_channel_deleted, cid,
                                    int(data.get("delete_at") or now_ms()))

    # ---- memberships and users ------------------------------------------------------------
    async def user_added(self, data: dict, bc: dict) -> None:
        m = self.mirror
        cid = bc.get("channel_id") or data.get("channel_id")
        uid = data.get("user_id") or bc.get("user_id")
        if cid and uid and not await asyncio.to_thread(m.add_channel_member, cid, uid):
            await self.refresher.refresh_channel(cid)
        tid = data.get("team_id")
        if uid and tid and not await asyncio.to_thread(m.on_team, tid, uid):
            # added_to_team goes to the user alone; joining a team lands people in its
            # default channels, where the bot hears user_added: read their teams now
            self.spawn(self.refresher.refresh_user(uid), "refresh-user")

    async def user_removed(self, data: dict, bc: dict) -> None:
        cid = data.get("channel_id") or bc.get("channel_id")
        uid = data.get("user_id") or bc.get("user_id")
        if cid and uid:
            await asyncio.to_thread(self.mirror.remove_channel_member, cid, uid)

    async def added_to_team(self, data: dict, bc: dict) -> None:
        tid, uid = data.get("team_id"), data.get("user_id") or bc.get("user_id")
        if tid and uid:
            if uid == self.bot_id():  # the bot joined a team: read it, off the queue
                self.spawn(Syncer(self.mm, self.mirror).run({"team_id": tid}, incremental=True),
                           "team-sync")
            else:
                await asyncio.to_thread(self.mirror.add_team_member, tid, uid)

    async def leave_team(self, data: dict, bc: dict) -> None:
        tid, uid = data.get("team_id"), data.get("user_id") or bc.get("user_id")
        if tid and uid:
            await asyncio.to_thread(self.mirror.remove_team_member, tid, uid)

    async def user_updated(self, data: dict, bc: dict) -> None:
        user = json_field(data.get("user"))
        if user and user.get("id"):
            await asyncio.to_thread(self.mirror.upsert_user, user)

    async def new_user(self, data: dict, bc: dict) -> None:
        uid = data.get("user_id")
        if uid:
            await asyncio.to_thread(self.mirror.upsert_user, await self.mm.user(uid))
