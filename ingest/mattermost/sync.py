"""Walk the live Mattermost server through REST and bring the mirror and the index in line.

Used three ways: a full re-index (``POST /v1/reindex``, ``openops sync``), a re-index of one
team or channel, and the catch-up after a WebSocket gap (only posts changed since each
channel's cursor). Channels are walked in a stable order and the job's cursor records the last
one finished, so a re-index that crashed resumes where it stopped. Nothing is dropped first:
search keeps answering from the current index while the walk goes on.

With a bot that is not a system admin, private channels it is not in are out of reach
(``403``): they are reported as errors, and the rest is synced."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from rag.util import now_ms

from .client import Mattermost, MattermostError
from .mirror import Mirror

log = logging.getLogger("openops.mattermost.sync")

PER_PAGE = 200
SINCE_CAP = 1000  # GET /channels/{id}/posts?since= returns this many changes at most (posts.yaml)


def _ordered(got: dict) -> list[dict]:
    """A PostList's posts in ``order``, oldest first (the roots it adds outside ``order`` are
    context, not changes)."""
    posts = [got["posts"][i] for i in got.get("order") or [] if i in (got.get("posts") or {})]
    return sorted(posts, key=lambda x: int(x.get("create_at") or 0))


def _changed_at(p: dict) -> int:
    return max(int(p.get("update_at") or 0), int(p.get("create_at") or 0),
               int(p.get("delete_at") or 0))


@dataclass
class SyncProgress:
    phase: str = "starting"
    users: int = 0
    teams: int = 0
    channels_total: int = 0
    channels_done: int = 0
    posts: int = 0
    files: int = 0
    chunks: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["errors"] = self.errors[-50:]
        d["error_count"] = len(self.errors)
        return d


class Cancelled(Exception):
    pass


async def pages(fetch: Callable[[int], Awaitable[list]]) -> list:
    out: list = []
    page = 0
    while True:
        got = await fetch(page)
        out.extend(got or [])
        if not got or len(got) < PER_PAGE:
            return out
        page += 1


class Syncer:
    def __init__(self, mm: Mattermost, mirror: Mirror, *, extract=None,
                 on_progress: Callable[[SyncProgress, dict], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 on_post: Callable[[dict], Awaitable[None]] | None = None):
        self.mm = mm
        self.mirror = mirror
        self._extract = extract
        self.on_progress = on_progress  # (progress, cursor): persisted by the job
        self.cancelled = cancelled or (lambda: False)
        self.on_post = on_post  # a listener's catch-up (the bot answers missed mentions)
        self.progress = SyncProgress()

    def _tick(self, cursor: dict) -> None:
        if self.cancelled():
            raise Cancelled()
        if self.on_progress:
            self.on_progress(self.progress, cursor)

    def _error(self, what: str, exc: Exception) -> None:
        msg = f"{what}: {exc}"
        log.warning("sync: %s", msg)
        self.progress.errors.append(msg)

    # ---- the walk -------------------------------------------------------------------------
    async def run(self, scope: dict | str = "all", *, cursor: dict | None = None,
                  incremental: bool = False) -> SyncProgress:
        """``scope``: "all", {"team_id": ...} or {"channel_id": ...}. ``cursor`` resumes a
        walk (``{"after": channel_id}``); ``incremental`` fetches only posts changed since
        each channel's cursor (channels without one are walked whole)."""
        cursor = dict(cursor or {})
        p = self.progress
        if not self.mm.me:
            await self.mm.login()
        p.phase = "users"
        self._tick(cursor)
        if scope == "all" or "team_id" in scope:
            users = await pages(lambda n: self.mm.users_page(n, PER_PAGE))
            await asyncio.to_thread(self.mirror.upsert_users, users)
            p.users = len(users)
        else:
            users = []
        p.phase = "channels"
        self._tick(cursor)
        channels = await self._channels(scope, users)
        p.channels_total = len(channels)
        after = cursor.get("after", "")
        todo = [c for c in sorted(channels, key=lambda c: c["id"]) if c["id"] > after]
        p.channels_done = len(channels) - len(todo)
        p.phase = "posts"
        self._tick(cursor)
        for ch in todo:
            try:
                await self._channel(ch, incremental)
            except (Cancelled, asyncio.CancelledError):
                raise
            except MattermostError as exc:
                self._error(f"channel {ch.get('name') or ch['id']}", exc)
            p.channels_done += 1
            cursor["after"] = ch["id"]
            self._tick(cursor)
        p.phase = "done"
        return p

    async def _channels(self, scope: dict | str, users: list[dict]) -> list[dict]:
        mm, mirror = self.mm, self.mirror
        if isinstance(scope, dict) and "channel_id" in scope:
            ch = await mm.channel(scope["channel_id"])
            if ch.get("team_id"):
                await self._team(await mm.team(ch["team_id"]), channels=False)
            await asyncio.to_thread(mirror.upsert_channel, ch)
            return [ch]
        if isinstance(scope, dict) and "team_id" in scope:
            teams = [await mm.team(scope["team_id"])]
        else:
            teams = await pages(lambda n: mm.teams_page(n, PER_PAGE))
        found: dict[str, dict] = {}
        for t in teams:
            for ch in await self._team(t, channels=True):
                found[ch["id"]] = ch
        if scope == "all":
            # direct and group messages belong to no team: found through their members
            for u in users:
                try:
                    mine = await mm.user_channels(u["id"])
                except MattermostError as exc:
                    self._error(f"channels of @{u.get('username')}", exc)
                    continue
                for ch in mine:
                    if ch.get("type") in ("D", "G") and ch["id"] not in found:
                        found[ch["id"]] = ch
                        await asyncio.to_thread(mirror.upsert_channel, ch)
        self.progress.teams = len(teams)
        return list(found.values())

    async def _team(self, t: dict, *, channels: bool) -> list[dict]:
        mm, mirror = self.mm, self.mirror
        await asyncio.to_thread(mirror.upsert_team, t)
        members = await pages(lambda n: mm.team_members_page(t["id"], n, PER_PAGE))
        await asyncio.to_thread(mirror.set_team_members, t["id"], members)
        if not channels:
            return []
        out: list[dict] = []
        for kind in ("", "private", "deleted"):
            try:
                got = await pages(lambda n, k=kind: mm.team_channels_page(t["id"], k, n, PER_PAGE))
            except MattermostError as exc:
                if kind == "private" and exc.status == 403:
                    # not a system admin: the private channels the bot is in still count
                    self._error(f"private channels of team {t.get('name')} (give the bot the "
                                "system_admin role to sync them all)", exc)
                    got = [c for c in await mm.get(
                        f"/api/v4/users/{mm.me['id']}/teams/{t['id']}/channels")
                        if c.get("type") == "P"]
                else:
                    self._error(f"{kind or 'public'} channels of team {t.get('name')}", exc)
                    continue
            for ch in got:
                await asyncio.to_thread(mirror.upsert_channel, ch)
                out.append(ch)
        return out

    async def _channel(self, ch: dict, incremental: bool) -> None:
        mm, mirror = self.mm, self.mirror
        members = await pages(lambda n: mm.channel_members_page(ch["id"], n, PER_PAGE))
        await asyncio.to_thread(mirror.set_channel_members, ch["id"], members)
        since = await asyncio.to_thread(mirror.cursor, ch["id"]) if incremental else 0
        await self.posts(ch["id"], since=since, full=not since)

    async def posts(self, channel_id: str, *, since: int = 0, full: bool = True) -> int:
        """Apply the channel's posts (all of them, or those changed since ``since``); a full
        walk also marks deleted what the server no longer lists.

        A ``since`` read returns at most :data:`SINCE_CAP` changed posts, ordered by create time
        but not necessarily consecutive, and cannot be paged: when it comes back full, the
        channel is walked whole and every post changed since ``since`` applied, and what the
        walk no longer finds is deleted. The channel's cursor moves once all of that is
        applied, and only as far as the first read saw (a change during the walk, on a page
        read already, is read again next time): a crash midway loses nothing."""
        started = now_ms()
        count = 0
        walk = not since
        cursor_at = 0
        if since:
            got = await self.mm.posts_page(channel_id, since=since)
            batch = _ordered(got)
            cursor_at = max((_changed_at(p) for p in batch), default=0)
            count += await self._apply(batch)
            if len(got.get("order") or []) >= SINCE_CAP:
                log.info("channel %s: %d changes since %d, the most one read returns: walking "
                         "the channel for the rest", channel_id, SINCE_CAP, since)
                walk = True
        if walk:
            seen: set[str] = set()
            edges: set[int] = set()  # create times at which one page ended and the next began
            before = ""
            while True:
                # paged by `before` the oldest post so far, not by page number: a deletion
                # during the walk would shift numbered pages and skip a live post
                got = await self.mm.posts_page(channel_id, per_page=PER_PAGE, before=before)
                batch = _ordered(got)
                seen.update(p["id"] for p in batch)
                if not since and not before:
                    cursor_at = max((_changed_at(p) for p in batch), default=0)
                count += await self._apply([p for p in batch if _changed_at(p) > since])
                if len(got.get("order") or []) < PER_PAGE or not batch:
                    break
                before = batch[0]["id"]
                edges.add(int(batch[0].get("create_at") or 0))
                if self.cancelled():
                    raise Cancelled()
            if full or since:
                await self._vanished(channel_id, seen, edges, started)
        await asyncio.to_thread(self.mirror.advance_cursor, channel_id, cursor_at)
        return count

    async def _apply(self, batch: list[dict]) -> int:
        if not batch:
            return 0
        await asyncio.to_thread(self.mirror.apply_posts, batch, move_cursor=False)
        for post in batch:
            if post.get("file_ids") and not post.get("delete_at"):
                await self.files(post)
            if self.on_post:
                await self.on_post(post)
        self.progress.posts += len(batch)
        return len(batch)

    async def _vanished(self, channel_id: str, seen: set[str], edges: set[int],
                        before_ms: int) -> None:
        """Live mirror rows, older than the walk, that it did not list: deleted. One that
        shares its create time with a page edge may have been passed over between two pages
        (``before`` is strict), so it is asked for by id."""
        missing = await asyncio.to_thread(self.mirror.live_posts_not_in, channel_id, seen,
                                          before_ms)
        gone: list[str] = []
        for post_id, created in missing:
            if created in edges:
                try:
                    post = await self.mm.post_by_id(post_id)
                except MattermostError as exc:
                    if exc.status != 404:
                        raise
                else:
                    if post.get("channel_id") == channel_id and not post.get("delete_at"):
                        await self._apply([post])
                        continue
            gone.append(post_id)
        if gone:
            await asyncio.to_thread(self.mirror.mark_deleted, gone)

    async def files(self, post: dict) -> None:
        """Fetch, extract and store a post's attachments (a bad file is reported, skipped)."""
        for fid in post.get("file_ids") or []:
            if await asyncio.to_thread(self.mirror.has_file, fid):
                continue
            try:
                info = await self.mm.file_info(fid)
                data = await self.mm.file_bytes(fid)
            except MattermostError as exc:
                self._error(f"file {fid} of post {post['id']}", exc)
                continue
            name = info.get("name") or fid
            text, kind, error = "", "file", ""
            try:
                if self._extract is None:
                    from ingest.files import extract

                    self._extract = extract
                res = await asyncio.to_thread(self._extract, name, data)
                text, kind = res.text, res.kind
                self.progress.files += 1
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the sync
                error = str(exc) or exc.__class__.__name__
                self.progress.errors.append(f"{name}: {error}")
            await asyncio.to_thread(self.mirror.apply_file, info, post, text, kind, error)
