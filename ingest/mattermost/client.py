"""The connection to Mattermost: REST v4 through ``mattermostautodriver`` (async, httpx), and a
WebSocket that reconnects with backoff and reports every (re)connection, so a listener (the
bot) can catch up through REST after a gap.

Why mattermostautodriver and not mattermostdriver: it is maintained (11.x follows the server's
own OpenAPI), its HTTP calls are async (httpx) so the bot shares the API's event loop instead
of blocking it, and it retries 429 (honouring ``Retry-After``) and idempotent 5xx with backoff.
Its WebSocket class, like mattermostdriver's, sleeps a fixed delay and reconnects forever, even
after a clean close, and its TLS context ignores a private CA given as ``verify``; so the loop
below replaces it, using the same ``aiohttp`` and the same authentication challenge."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import aiohttp
import httpx

log = logging.getLogger("openops.mattermost.client")


class MattermostError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _driver_options(url: str, token: str, ca_file: str | None, timeout: float,
                    max_retries: int = 4) -> dict:
    u = urlparse(url if "://" in url else "https://" + url)
    if u.scheme not in ("http", "https"):
        raise MattermostError(f"OPENOPS_MATTERMOST_URL: scheme must be https or http, not {u.scheme!r}")
    if u.path.strip("/"):
        raise MattermostError("OPENOPS_MATTERMOST_URL: give the server's root URL, without a path "
                              f"({u.path!r}); a Mattermost under a sub-path is not supported")
    return {
        "url": u.hostname or "localhost",
        "scheme": u.scheme,
        "port": u.port or (443 if u.scheme == "https" else 80),
        "token": token,
        "verify": ca_file or True,
        "timeout": timeout,
        "request_timeout": timeout,
        "keepalive": True,
        "max_retries": max_retries,
        "retry_max_sleep": 20,
    }


class Backoff:
    """Exponential backoff with jitter: ``next()`` is the delay before the next attempt,
    ``reset()`` after a success. One policy for the WebSocket and the bot's start-up."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, *, jitter: bool = True):
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** min(self.failures, 10))
        self.failures += 1
        return delay * (0.5 + random.random() / 2) if self.jitter else delay


class Mattermost:
    """A thin async facade over the driver: only the calls OpenOps makes, each returning JSON."""

    def __init__(self, url: str, token: str, *, ca_file: str | None = None, timeout: float = 30.0,
                 max_retries: int = 4):
        """``max_retries``: of 429 and idempotent 5xx (and connection errors); a caller that a
        person waits on (the permission re-read before an API answer) wants few."""
        from mattermostautodriver import AsyncTypedDriver

        self.url = url.rstrip("/")
        self.options = _driver_options(url, token, ca_file, timeout, max_retries)
        self.driver = AsyncTypedDriver(self.options)
        self.driver.client.token = token  # usable before login(): the token is all it needs
        self.token = token
        self.ca_file = ca_file
        self.me: dict = {}

    # ---- plumbing -------------------------------------------------------------------------
    async def _call(self, coro: Awaitable[Any]) -> Any:
        from mattermostautodriver import exceptions as mx

        try:
            out = await coro
        except mx.NoAccessTokenProvided as exc:
            raise MattermostError("Mattermost refused the bot's token (401): check "
                                  "OPENOPS_MATTERMOST_TOKEN", 401) from exc
        except mx.NotEnoughPermissions as exc:
            raise MattermostError(f"Mattermost: not allowed ({exc})", 403) from exc
        except mx.ResourceNotFound as exc:
            raise MattermostError(f"Mattermost: not found ({exc})", 404) from exc
        except mx.InvalidOrMissingParameters as exc:
            raise MattermostError(f"Mattermost rejected the request ({exc})", 400) from exc
        except (mx.InvalidMattermostError, mx.UnknownMattermostError, mx.TooManyRequests,
                mx.ContentTooLarge, mx.MethodNotAllowed, mx.FeatureDisabled) as exc:
            raise MattermostError(f"Mattermost error: {exc}") from exc
        except httpx.HTTPError as exc:
            raise MattermostError(f"cannot reach Mattermost at {self.url}: {exc}") from exc
        if isinstance(out, httpx.Response):  # the driver hands back non-JSON bodies raw
            ctype = out.headers.get("content-type", "")
            if ctype.startswith("application/json"):
                return out.json()
            return out.content
        return out

    async def get(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return await self._call(self.driver.client.get(path, params=params or None))

    async def post(self, path: str, body: Any) -> Any:
        return await self._call(self.driver.client.post(path, options=body))

    async def close(self) -> None:
        await self.driver.close()

    # ---- calls ----------------------------------------------------------------------------
    async def login(self) -> dict:
        self.me = await self._call(self.driver.login())
        return self.me

    async def user(self, user_id: str) -> dict:
        return await self._call(self.driver.users.get_user(user_id))

    async def users_page(self, page: int, per_page: int = 200) -> list[dict]:
        return await self.get("/api/v4/users", page=page, per_page=per_page)

    async def teams_page(self, page: int, per_page: int = 200) -> list[dict]:
        return await self.get("/api/v4/teams", page=page, per_page=per_page)

    async def team(self, team_id: str) -> dict:
        return await self.get(f"/api/v4/teams/{team_id}")

    async def team_members_page(self, team_id: str, page: int, per_page: int = 200) -> list[dict]:
        return await self.get(f"/api/v4/teams/{team_id}/members", page=page, per_page=per_page)

    async def team_channels_page(self, team_id: str, kind: str, page: int,
                                 per_page: int = 200) -> list[dict]:
        """kind: "" (public), "private" or "deleted" (archived)."""
        path = f"/api/v4/teams/{team_id}/channels" + (f"/{kind}" if kind else "")
        return await self.get(path, page=page, per_page=per_page)

    async def user_channels(self, user_id: str) -> list[dict]:
        """Every channel of a user, any team (DMs and group messages included)."""
        return await self.get(f"/api/v4/users/{user_id}/channels")

    async def channel(self, channel_id: str) -> dict:
        return await self._call(self.driver.channels.get_channel(channel_id))

    async def channel_members_page(self, channel_id: str, page: int,
                                   per_page: int = 200) -> list[dict]:
        return await self.get(f"/api/v4/channels/{channel_id}/members", page=page,
                              per_page=per_page)

    async def channel_member(self, channel_id: str, user_id: str) -> dict:
        return await self.get(f"/api/v4/channels/{channel_id}/members/{user_id}")

    async def posts_page(self, channel_id: str, *, page: int | None = None,
                         per_page: int | None = None, since: int | None = None,
                         before: str | None = None) -> dict:
        """A PostList: newest first by ``page``/``per_page`` or ``before`` a post, or every
        change ``since`` (which takes no paging: posts.yaml)."""
        if since:
            return await self._call(self.driver.posts.get_posts_for_channel(
                channel_id, since=since))
        return await self._call(self.driver.posts.get_posts_for_channel(
            channel_id, page=page, per_page=per_page, before=before or None))

    async def post_by_id(self, post_id: str) -> dict:
        return await self._call(self.driver.posts.get_post(post_id))

    async def thread(self, post_id: str) -> dict:
        return await self.get(f"/api/v4/posts/{post_id}/thread")

    async def create_post(self, channel_id: str, message: str, *, root_id: str = "",
                          props: dict | None = None) -> dict:
        return await self._call(self.driver.posts.create_post(
            channel_id, message, root_id=root_id or None, props=props))

    async def patch_post(self, post_id: str, message: str, props: dict | None = None) -> dict:
        return await self._call(self.driver.posts.patch_post(post_id, message=message,
                                                             props=props))

    async def ephemeral(self, user_id: str, channel_id: str, message: str) -> dict:
        """A post only ``user_id`` sees (the reference's post object: channel_id, message)."""
        return await self._call(self.driver.posts.create_post_ephemeral(
            user_id, {"channel_id": channel_id, "message": message}))

    async def react(self, post_id: str, emoji: str) -> dict:
        return await self._call(self.driver.reactions.save_reaction(
            {"user_id": self.me["id"], "post_id": post_id, "emoji_name": emoji}))

    async def direct_channel(self, user_a: str, user_b: str) -> dict:
        return await self._call(self.driver.channels.create_direct_channel([user_a, user_b]))

    async def file_info(self, file_id: str) -> dict:
        return await self._call(self.driver.files.get_file_info(file_id))

    async def file_bytes(self, file_id: str) -> bytes:
        out = await self._call(self.driver.files.get_file(file_id))
        if isinstance(out, (bytes, bytearray)):
            return bytes(out)
        if isinstance(out, (dict, list)):
            return json.dumps(out).encode()
        raise MattermostError(f"file {file_id}: unexpected body")

    async def create_command(self, body: dict) -> dict:
        return await self.post("/api/v4/commands", body)

    async def commands(self, team_id: str) -> list[dict]:
        return await self.get("/api/v4/commands", team_id=team_id, custom_only=True)

    # ---- WebSocket ------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.options["scheme"] != "https":
            return None
        # SERVER_AUTH: verify the server (mattermostdriver's CLIENT_AUTH context cannot)
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)

    @property
    def websocket_url(self) -> str:
        o = self.options
        scheme = "wss" if o["scheme"] == "https" else "ws"
        return f"{scheme}://{o['url']}:{o['port']}/api/v4/websocket"


class EventStream:
    """Connect, authenticate, hand each event to ``on_event``; on any drop, reconnect with
    exponential backoff and jitter, calling ``on_connect`` after each successful (re)connect
    (the bot catches up through REST there). ``stop()`` ends it for good."""

    def __init__(self, mm: Mattermost, on_event: Callable[[dict], Awaitable[None]],
                 on_connect: Callable[[bool], Awaitable[None]], *, min_backoff: float = 0.5,
                 max_backoff: float = 30.0, heartbeat: float = 20.0):
        self.mm = mm
        self.on_event = on_event
        self.on_connect = on_connect
        self.backoff = Backoff(min_backoff, max_backoff)
        self.delays: deque[float] = deque(maxlen=64)  # the delays chosen, newest last
        self.heartbeat = heartbeat
        self._stopping = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connects = 0
        self.connected = asyncio.Event()

    def stop(self) -> None:
        self._stopping = True
        if self._ws is not None and not self._ws.closed:
            asyncio.ensure_future(self._ws.close())

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._session()
                self.backoff.reset()  # a session that ended cleanly resets the backoff
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: back off and retry
                log.warning("Mattermost WebSocket: %s (attempt %d)", exc,
                            self.backoff.failures + 1)
            finally:
                self.connected.clear()
                self._ws = None
            if self._stopping:
                return
            delay = self.backoff.next()
            self.delays.append(delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        timeout = aiohttp.ClientWSTimeout(ws_close=5)
        async with aiohttp.ClientSession() as session, session.ws_connect(
                self.mm.websocket_url, ssl=self.mm.ssl_context(), heartbeat=self.heartbeat,
                timeout=timeout, headers={"Authorization": f"Bearer {self.mm.token}"}) as ws:
            self._ws = ws
            await ws.send_str(json.dumps({"seq": 1, "action": "authentication_challenge",
                                          "data": {"token": self.mm.token}}))
            hello = False
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    log.warning("Mattermost WebSocket: a frame that is not JSON was ignored")
                    continue
                if data.get("status") == "FAIL":
                    raise MattermostError(f"WebSocket authentication failed: {data}", 401)
                if "event" not in data:
                    continue  # a reply to an action (the auth challenge): status OK
                if data["event"] == "hello" and not hello:
                    hello = True
                    self.backoff.reset()  # a healthy connection: the next drop starts over
                    self.connects += 1
                    self.connected.set()
                    await self.on_connect(self.connects > 1)
                    continue
                try:
                    await self.on_event(data)
                except Exception:  # noqa: BLE001 - one bad event must not drop the socket
                    log.exception("handling Mattermost event %s failed", data.get("event"))
            if not self._stopping:
                raise MattermostError("the server closed the WebSocket")
