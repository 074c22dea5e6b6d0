"""A Mattermost API v4 test double: a real HTTPS + WSS server for the subset the OpenOps bot uses.

It follows the official reference kept in /work/shared/reference/mattermost-api/ (OpenAPI files of
mattermost/mattermost@bd16f4f9, the WebSocket section of introduction.yaml, the extracted WebSocket
payloads and the slash-command developer docs), and the server code where the reference is silent:

* Objects have the server's JSON field names: Post, PostList, Channel, ChannelMember, User, Team,
  TeamMember, FileInfo, Reaction, Command, Bot; ids are 26 lowercase alphanumerics, times are epoch ms.
  Errors are AppError bodies ``{id, message, detailed_error, request_id, status_code, is_oauth}``.
* Auth: ``Authorization: Bearer|Token <token>``, the ``MMAUTHTOKEN`` cookie or ``?access_token=``;
  401 ``api.context.session_expired.app_error`` otherwise (also for deactivated users). Reads need
  channel membership, or a public channel plus team membership; ``system_admin`` in a user's roles
  grants everything (private-channel listing, ephemeral posts, other users' data, ...).
* Posts like the SQL store: a reply moves its root's ``update_at``; an edit sets ``edit_at`` and keeps
  the old version as a deleted copy with ``original_id`` (edit history); deleting a root deletes its
  replies, sets ``props.deleteBy`` and deletes attached files; reactions touch ``update_at``.
  ``GET /channels/{id}/posts`` pages newest first (``page``/``per_page``, ``before``/``after``), adds the
  roots and threads of the page to ``posts`` (not to ``order``), sets ``next_post_id``/``prev_post_id``
  as ``AddCursorIdsForPostList`` does; ``since`` returns every post changed after that time, deleted ones
  and edit-history copies included, plus their roots, with empty cursors. ``has_next`` is only sent by
  the thread endpoint (``perPage``/``direction``/``fromCreateAt``/``fromPost``), as on the real server.
  ``pending_post_id`` de-duplicates retried creates. Messages over 16383 characters get a 400.
* WebSocket ``/api/v4/websocket``: header/cookie auth at upgrade or the ``authentication_challenge``
  action (a bad token closes the socket); ``hello`` (seq 0) first; envelope ``{event, data, broadcast,
  seq}``; delivery as the hub does it (``broadcast.user_id`` > ``omit_users`` > channel membership >
  team membership > everyone). ``posted`` carries the post as a JSON string and, per recipient, a
  ``mentions`` JSON list holding only that recipient when they were @-mentioned (or the DM partner,
  or on @channel/@all/@here). Actions: ``user_typing``, ``get_statuses``, ``get_statuses_by_ids``, ``ping``.
* Views: ``POST /channels/members/{user_id}/view`` (and :meth:`view_channel`) moves the member's
  ``last_viewed_at`` to now and publishes ``channel_viewed`` (``data.channel_id``) to the viewer
  alone (``broadcast.user_id``): another user's socket, the bot's included, never hears it.
* Slash commands: registered commands are POSTed (or GETed) the reference's form fields (no
  ``root_id``: the thread a command was typed in only places its responses) with ``Authorization: Token``;
  ``in_channel``/``ephemeral`` responses, ``extra_responses`` and delayed responses on ``response_url``
  (``POST /hooks/commands/{id}``, 5 uses, 30 minutes) are handled like the server does.

* OAuth 2.0 service provider (``oauth.yaml``; the flow as the developer docs page "Use OAuth2.0 with
  Mattermost" and ``web/oauth.go`` describe it): apps registered with :meth:`add_oauth_app` (an OAuthApp
  with the reference's fields); ``GET /oauth/authorize`` (``response_type=code``, ``client_id``,
  ``redirect_uri``, ``state``, optional ``scope`` and PKCE ``code_challenge``/``code_challenge_method``)
  needs a signed-in browser (``MMAUTHTOKEN`` cookie, else 302 to ``/login?redirect_to=``), refuses a
  ``redirect_uri`` not among the app's ``callback_urls`` (an error page, never a redirect), and for a
  trusted app (or one the user allowed: :meth:`allow_oauth_app`) redirects to ``redirect_uri`` with
  ``code`` and ``state``; the consent page itself is the webapp's and is left out (403 page).
  ``POST /oauth/access_token`` (form: ``grant_type=authorization_code``, ``client_id``,
  ``client_secret`` (client_secret_post), ``code``, ``redirect_uri``, ``code_verifier``; or
  ``grant_type=refresh_token``) answers ``{access_token, token_type: "bearer", expires_in, scope,
  refresh_token}``; a code is single-use and lives 10 minutes. The access token is then a session
  token of that user for ``/api/v4`` (e.g. ``GET /users/me``). :meth:`revoke_token` ends any token.
* JSON is compact with ``Content-Type: application/json`` (no charset; mattermostautodriver checks).
  Test-side inspection: ``requests`` (method, path, JSON body), ``events`` (every published event),
  ``ephemerals``, ``server_errors`` (tracebacks of bugs in the double, answered with a 500).

Left out: login/sessions/MFA, search, threads/CRT (no ``thread_updated``), preferences, statuses
beyond on/offline, pins, channel/team creation over REST (except DM/GM), schemes and fine-grained roles
(only system_admin, team_admin and membership are modelled), CSRF checks for cookie auth, rate limits,
ETags, thumbnails/previews, link embeds, WebSocket resumption with ``connection_id``/``sequence_number``
(every connection is new), default channels on team join, ``system_*`` posts except join/leave
(opt-in: ``system_posts=True``), built-in slash commands and ``POST /commands/execute``. The clock
never repeats a millisecond, so every create/update is strictly later than the one before.

    double = MattermostDouble().start()
    team = double.add_team("acme")
    bot, token = double.add_bot("openops", roles="system_user system_admin")
    ...  # point the bot at double.url, verifying TLS with double.ca_file
    double.stop()
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import functools
import hashlib
import ipaddress
import json
import mimetypes
import os
import re
import secrets
import shutil
import socket
import ssl
import string
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_VERSION = "10.9.0.0.openops-double.false"  # CurrentVersion.BuildNumber.BuildHash.IsLicensed
MAX_MESSAGE_RUNES = 16383  # model.PostMessageMaxRunesV2
_ID_CHARS = string.ascii_lowercase + string.digits
_MENTION_RE = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9._-]*)", re.IGNORECASE)
_HASHTAG_RE = re.compile(r"(?<![\w#])#[a-z][\w.-]*\w", re.IGNORECASE)
_ID_RE = re.compile(r"^[a-z0-9]{26}$")
_EMOJI_RE = re.compile(r"^[a-zA-Z0-9\-+_]{1,64}$")
_IMAGE_EXT = {"jpg", "jpeg", "gif", "png", "bmp", "webp", "tiff", "tif", "svg", "heic"}


def _dumps(obj: Any) -> str:
    """Compact JSON, as Go's encoding/json writes it."""
    return json.dumps(obj, separators=(",", ":"))


def _json_response(data: Any, status: int = 200) -> web.Response:
    """``Content-Type: application/json`` exactly, without a charset, as the server sends it."""
    headers = {"Content-Type": "application/json"}
    return web.Response(body=_dumps(data).encode(), status=status, headers=headers)


def new_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(26))


class ApiError(Exception):
    """An AppError; raised by REST handlers (turned into JSON) and by test-side methods."""

    def __init__(self, status: int, error_id: str, message: str, detailed: str = ""):
        super().__init__(f"{status} {error_id}: {message}")
        self.status, self.error_id, self.message, self.detailed = status, error_id, message, detailed

    def body(self, request_id: str) -> dict:
        return {"id": self.error_id, "message": self.message, "detailed_error": self.detailed,
                "request_id": request_id, "status_code": self.status, "is_oauth": False}


def _forbidden() -> ApiError:
    return ApiError(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")


def _unauthorized() -> ApiError:
    return ApiError(401, "api.context.session_expired.app_error",
                    "Invalid or expired session, please login again.")


def _bad_param(name: str, where: str = "body") -> ApiError:
    if where == "url":
        return ApiError(400, "api.context.invalid_url_param.app_error",
                        f"Invalid or missing {name} parameter in request URL.")
    return ApiError(400, "api.context.invalid_body_param.app_error",
                    f"Invalid or missing {name} in request body.")


class RecordedRequest(NamedTuple):
    method: str
    path: str
    json: Any


class _Conn:
    def __init__(self, ws: web.WebSocketResponse, transport: Any):
        self.ws, self.transport = ws, transport
        self.user_id = ""
        self.seq = 0
        self.connection_id = new_id()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.writer: asyncio.Task | None = None
        self.closing: asyncio.Future | None = None


def _on_loop(method: Callable) -> Callable:
    """Run a state-changing method on the server loop (directly when already there or not started)."""

    @functools.wraps(method)
    def wrapper(self: MattermostDouble, *args: Any, **kwargs: Any) -> Any:
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return method(self, *args, **kwargs)

        async def call() -> Any:
            return method(self, *args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=60)

    return wrapper


def _make_certs(directory: str) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mattermost double test CA")])
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, encipher_only=False, decipher_only=False, digital_signature=True)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(key_cert_sign=True, crl_sign=True, **usage),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(key_cert_sign=False, crl_sign=False, **usage),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key"))
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths  # type: ignore[return-value]


class MattermostDouble:
    def __init__(self, *, system_posts: bool = False, command_ssl: ssl.SSLContext | bool | None = None):
        self.system_posts = system_posts  # add system_join_channel / system_leave_channel posts
        self.command_ssl = command_ssl  # ssl= for requests to slash-command URLs (None: default checks)
        self.users: dict[str, dict] = {}
        self.bots: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.teams: dict[str, dict] = {}
        self.team_members: dict[str, dict[str, dict]] = {}
        self.channels: dict[str, dict] = {}
        self.channel_members: dict[str, dict[str, dict]] = {}
        self.posts: dict[str, dict] = {}
        self.reactions: dict[str, dict[tuple[str, str], dict]] = {}
        self.file_infos: dict[str, dict] = {}
        self.file_data: dict[str, bytes] = {}
        self.commands: dict[str, dict] = {}
        self.command_hooks: dict[str, dict] = {}
        self.oauth_apps: dict[str, dict] = {}  # client id -> OAuthApp
        self.oauth_allowed: set[tuple[str, str]] = set()  # (user id, client id) the user allowed
        self._oauth_codes: dict[str, dict] = {}
        self._oauth_refresh: dict[str, dict] = {}
        self.ephemerals: list[tuple[str, dict]] = []
        self.events: list[tuple[str, dict, dict]] = []  # every published (event, data, broadcast)
        self.requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []  # tracebacks of unexpected exceptions in handlers
        self.bot_user_id: str | None = None
        self.bot_token: str | None = None
        self.url = ""
        self.ca_file = ""
        self._mentions: dict[str, list[str]] = {}
        self._replies: dict[str, list[dict]] = {}  # root id -> replies, for reply_count
        self._pending: dict[tuple[str, str], str] = {}
        self._sockets: set[_Conn] = set()
        self._ws_paused = False
        self._last_ms = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tmpdir = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MattermostDouble:
        self._tmpdir = tempfile.mkdtemp(prefix="mm-double-")
        self.ca_file, cert, key = _make_certs(self._tmpdir)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop_thread = threading.get_ident()
            self._loop.call_soon(started.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="mattermost-double", daemon=True)
        self._thread.start()
        started.wait(10)
        asyncio.run_coroutine_threadsafe(self._astart(sock, ctx), self._loop).result(timeout=30)
        return self

    async def _astart(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self._runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()
        self._session = aiohttp.ClientSession()

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._astop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    async def _astop(self) -> None:
        conns = list(self._sockets)
        self._drop(graceful=True)
        await asyncio.gather(*(c.closing for c in conns if c.closing), return_exceptions=True)
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    def __enter__(self) -> MattermostDouble:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the double's CA (for websockets, aiohttp, httpx)."""
        return ssl.create_default_context(cafile=self.ca_file)

    # ------------------------------------------------------------------ test-side API
    @_on_loop
    def add_team(self, name: str, display_name: str = "", type: str = "O") -> dict:
        now = self._now()
        team = {"id": new_id(), "create_at": now, "update_at": now, "delete_at": 0,
                "display_name": display_name or name, "name": name, "description": "", "email": "",
                "type": type, "company_name": "", "allowed_domains": "", "invite_id": new_id(),
                "allow_open_invite": type == "O", "scheme_id": None, "group_constrained": None,
                "policy_id": None}
        self.teams[team["id"]] = team
        self.team_members[team["id"]] = {}
        return copy.deepcopy(team)

    @_on_loop
    def add_user(self, username: str, first_name: str = "", last_name: str = "", roles: str = "system_user",
                 is_bot: bool = False, position: str = "", nickname: str = "", email: str = "") -> dict:
        if any(u["username"] == username.lower() for u in self.users.values()):
            raise ApiError(400, "app.user.save.username_exists.app_error",
                           "An account with that username already exists.")
        now = self._now()
        name = username.lower()
        user = {"id": new_id(), "create_at": now, "update_at": now, "delete_at": 0, "username": name,
                "auth_data": "", "auth_service": "", "email": email or f"{name}@example.com",
                "email_verified": True, "nickname": nickname, "first_name": first_name,
                "last_name": last_name,
                "position": position, "roles": roles, "locale": "en", "is_bot": is_bot, "props": {},
                "notify_props": {"channel": "true", "desktop": "mention", "email": "true",
                                 "mention_keys": "", "push": "mention"},
                "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
                "last_picture_update": 0, "mfa_active": False}
        self.users[user["id"]] = user
        self._publish("new_user", {"user_id": user["id"]})
        return copy.deepcopy(user)

    @_on_loop
    def add_bot(self, username: str = "openops", display_name: str = "", roles: str = "system_user",
                owner_id: str = "", description: str = "") -> tuple[dict, str]:
        user = self.add_user(username, first_name=display_name, roles=roles, is_bot=True)
        self.users[user["id"]]["bot_description"] = description
        self.bots[user["id"]] = {"user_id": user["id"], "username": user["username"],
                                 "display_name": display_name or username, "description": description,
                                 "owner_id": owner_id or user["id"], "create_at": user["create_at"],
                                 "update_at": user["create_at"], "delete_at": 0}
        self.bot_user_id, self.bot_token = user["id"], self.token_for(user["id"])
        return copy.deepcopy(self.users[user["id"]]), self.bot_token

    @_on_loop
    def token_for(self, user_id: str) -> str:
        self._user(user_id)
        for token, uid in self.tokens.items():
            if uid == user_id:
                return token
        token = new_id()
        self.tokens[token] = user_id
        return token

    @_on_loop
    def add_to_team(self, team_id: str, user_id: str, roles: str = "team_user") -> dict:
        self._team(team_id), self._user(user_id)
        member = {"team_id": team_id, "user_id": user_id, "roles": roles, "delete_at": 0,
                  "scheme_guest": False, "scheme_user": True, "scheme_admin": "team_admin" in roles,
                  "explicit_roles": ""}
        if user_id not in self.team_members[team_id]:
            self.team_members[team_id][user_id] = member
            self._publish("added_to_team", {"team_id": team_id, "user_id": user_id}, user_id=user_id)
        return copy.deepcopy(self.team_members[team_id][user_id])

    @_on_loop
    def remove_from_team(self, team_id: str, user_id: str) -> None:
        """Like LeaveTeam: also drops the user's memberships in the team's channels (no user_removed)."""
        self._team(team_id)
        if self.team_members[team_id].pop(user_id, None) is None:
            return
        for ch in self.channels.values():
            if ch["team_id"] == team_id:
                self.channel_members[ch["id"]].pop(user_id, None)
        data = {"user_id": user_id, "team_id": team_id}
        self._publish("leave_team", data, team_id=team_id, omit=[user_id])
        self._publish("leave_team", data, user_id=user_id)

    @_on_loop
    def add_channel(self, team_id: str, name: str, type: str = "O", display_name: str = "",
                    creator_id: str | None = None, header: str = "", purpose: str = "") -> dict:
        """Creates the channel; the creator (if given) becomes a member and gets ``channel_created``."""
        self._team(team_id)
        if type not in ("O", "P"):
            raise ApiError(400, "model.channel.is_valid.type.app_error", "Invalid type.")
        ch = self._new_channel(team_id, name, type, display_name or name, creator_id or "", header, purpose)
        if creator_id:
            self._join(ch["id"], creator_id, roles="channel_user channel_admin")
            self._publish("channel_created", {"channel_id": ch["id"], "team_id": team_id}, user_id=creator_id)
        return copy.deepcopy(ch)

    @_on_loop
    def add_member(self, channel_id: str, user_id: str) -> dict:
        ch, user = self._channel(channel_id), self._user(user_id)
        if user_id not in self.channel_members[channel_id]:
            self._join(channel_id, user_id)
            data = {"user_id": user_id, "team_id": ch["team_id"]}
            self._publish("user_added", data, channel_id=channel_id, omit=[user_id])
            self._publish("user_added", data, channel_id=channel_id, user_id=user_id)
            if self.system_posts:
                self._create_post(user_id, channel_id, f"@{user['username']} joined the channel.",
                                  type="system_join_channel", props={"username": user["username"]})
        return copy.deepcopy(self.channel_members[channel_id][user_id])

    @_on_loop
    def remove_member(self, channel_id: str, user_id: str, remover_id: str = "") -> None:
        self._channel(channel_id)
        user = self._user(user_id)
        if self.channel_members[channel_id].get(user_id) is None:
            return
        if self.system_posts:
            self._create_post(user_id, channel_id, f"@{user['username']} left the channel.",
                              type="system_leave_channel", props={"username": user["username"]})
        del self.channel_members[channel_id][user_id]
        remover = remover_id or user_id
        self._publish("user_removed", {"user_id": user_id, "remover_id": remover}, channel_id=channel_id)
        self._publish("user_removed", {"channel_id": channel_id, "remover_id": remover}, user_id=user_id)

    @_on_loop
    def archive_channel(self, channel_id: str) -> dict:
        ch = self._channel(channel_id)
        ch["delete_at"] = ch["update_at"] = self._now()
        data = {"channel_id": channel_id, "delete_at": ch["delete_at"]}
        self._publish_channel_scope("channel_deleted", ch, data)
        return copy.deepcopy(ch)

    @_on_loop
    def restore_channel(self, channel_id: str) -> dict:
        ch = self._channel(channel_id)
        ch["delete_at"], ch["update_at"] = 0, self._now()
        self._publish_channel_scope("channel_restored", ch, {"channel_id": channel_id})
        return copy.deepcopy(ch)

    @_on_loop
    def update_channel(self, channel_id: str, **fields: Any) -> dict:
        ch = self._channel(channel_id)
        unknown = set(fields) - {"display_name", "name", "header", "purpose", "type"}
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        converted = "type" in fields and fields["type"] != ch["type"]
        ch.update(fields)
        ch["update_at"] = self._now()
        self._publish("channel_updated", {"channel": _dumps(ch)}, channel_id=channel_id)
        if converted:
            self._publish("channel_converted", {"channel_id": channel_id}, team_id=ch["team_id"])
        return copy.deepcopy(ch)

    @_on_loop
    def deactivate_user(self, user_id: str) -> dict:
        """Sets delete_at, publishes user_updated; the user's tokens then get 401 and sockets close."""
        user = self._user(user_id)
        user["delete_at"] = user["update_at"] = self._now()
        if user_id in self.bots:
            self.bots[user_id]["delete_at"] = user["delete_at"]
        self._publish("user_updated", {"user": copy.deepcopy(user)})
        self._drop(graceful=True, user_id=user_id)
        return copy.deepcopy(user)

    @_on_loop
    def direct_channel(self, user_a: str, user_b: str) -> dict:
        return copy.deepcopy(self._direct(user_a, user_b, creator=user_a))

    @_on_loop
    def group_channel(self, user_ids: Iterable[str]) -> dict:
        ids = list(dict.fromkeys(user_ids))
        return copy.deepcopy(self._group(ids, creator=ids[0]))

    @_on_loop
    def post(self, user_id: str, channel_id: str, message: str, root_id: str = "",
             file_ids: Iterable[str] = (), props: dict | None = None, create_at: int | None = None,
             type: str = "") -> dict:
        return self._create_post(user_id, channel_id, message, root_id=root_id, file_ids=list(file_ids),
                                 props=props, create_at=create_at or 0, type=type)

    @_on_loop
    def edit_post(self, post_id: str, message: str) -> dict:
        return self._update_post(self._post(post_id), {"message": message})

    @_on_loop
    def delete_post(self, post_id: str, deleted_by: str = "") -> dict:
        post = self._post(post_id)
        return self._delete_post(post, deleted_by or post["user_id"])

    @_on_loop
    def react(self, user_id: str, post_id: str, emoji_name: str) -> dict:
        return self._react(user_id, self._post(post_id), emoji_name)

    @_on_loop
    def unreact(self, user_id: str, post_id: str, emoji_name: str) -> None:
        self._unreact(user_id, self._post(post_id), emoji_name)

    @_on_loop
    def upload_file(self, user_id: str, channel_id: str, name: str, data: bytes,
                    mime_type: str | None = None) -> dict:
        self._user(user_id), self._channel(channel_id)
        return copy.deepcopy(self._store_file(user_id, channel_id, name, data, mime_type))

    @_on_loop
    def posts_in(self, channel_id: str) -> list[dict]:
        """Stored posts of a channel, oldest first, deleted ones included, edit-history copies left out."""
        self._channel(channel_id)
        rows = [p for p in self.posts.values() if p["channel_id"] == channel_id and not p["original_id"]]
        return [self._post_out(p) for p in sorted(rows, key=lambda p: (p["create_at"], p["id"]))]

    @_on_loop
    def get_post(self, post_id: str) -> dict:
        return self._post_out(self._post(post_id))

    @_on_loop
    def set_last_viewed(self, channel_id: str, user_id: str, ms: int) -> dict:
        member = self.channel_members[self._channel(channel_id)["id"]].get(user_id)
        if member is None:
            raise ApiError(404, "app.channel.get_member.missing.app_error", "No channel member found.")
        live = [p for p in self.posts.values() if p["channel_id"] == channel_id and not p["delete_at"]]
        member.update(last_viewed_at=ms, last_update_at=self._now(),
                      msg_count=sum(p["create_at"] <= ms for p in live),
                      mention_count=sum(p["create_at"] > ms and user_id in self._mentions.get(p["id"], ())
                                        for p in live))
        return copy.deepcopy(member)

    @_on_loop
    def view_channel(self, user_id: str, channel_id: str) -> dict:
        """The user opens the channel (``POST /channels/members/{user_id}/view``, ViewChannel)."""
        return self._view(user_id, channel_id)

    @_on_loop
    def register_command(self, team_id: str, trigger: str, url: str, creator_id: str, method: str = "P",
                         **fields: Any) -> dict:
        self._team(team_id), self._user(creator_id)
        trigger = trigger.lstrip("/").lower()
        if not trigger or " " in trigger or method not in ("P", "G") or not url.startswith(("http://", "https://")):
            raise ApiError(400, "model.command.is_valid.trigger.app_error", "Invalid trigger, method or url.")
        if any(c["team_id"] == team_id and c["trigger"] == trigger and not c["delete_at"]
               for c in self.commands.values()):
            raise ApiError(400, "api.command.duplicate_trigger.app_error",
                           "This trigger word is already in use.")
        now = self._now()
        cmd = {"id": new_id(), "token": new_id(), "create_at": now, "update_at": now, "delete_at": 0,
               "creator_id": creator_id, "team_id": team_id, "trigger": trigger, "method": method,
               "username": "", "icon_url": "", "auto_complete": False, "auto_complete_desc": "",
               "auto_complete_hint": "", "display_name": "", "description": "", "url": url, "plugin_id": ""}
        cmd.update({k: v for k, v in fields.items() if k in cmd and k not in ("id", "token")})
        self.commands[cmd["id"]] = cmd
        return copy.deepcopy(cmd)

    def send_slash_command(self, user_id: str, channel_id: str, text: str, root_id: str = "",
                           timeout: float = 30.0) -> dict:
        """Execute ``text`` ("/trigger args") like a client typing it; returns the parsed response."""
        assert self._loop is not None, "start() the double first"
        call = self._execute_command(user_id, channel_id, text, root_id, timeout)
        fut = asyncio.run_coroutine_threadsafe(call, self._loop)
        return fut.result(timeout=timeout + 5)

    @_on_loop
    def drop_websockets(self, graceful: bool = False) -> int:
        """Close every open socket: abruptly (a network gap) or with a 1001 close frame."""
        return self._drop(graceful=graceful)

    def pause_websockets(self, paused: bool = True) -> None:
        self._ws_paused = paused

    @_on_loop
    def ws_connections(self, user_id: str | None = None) -> int:
        """Open sockets; with ``user_id`` only the ones authenticated as that user."""
        return sum(1 for c in self._sockets if user_id is None or c.user_id == user_id)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
                 message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s: {message or predicate}")
            time.sleep(interval)

    # ------------------------------------------------------------------ model helpers
    def _now(self) -> int:
        self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
        return self._last_ms

    def _user(self, user_id: str) -> dict:
        if user_id not in self.users:
            raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
        return self.users[user_id]

    def _team(self, team_id: str) -> dict:
        if team_id not in self.teams:
            raise ApiError(404, "app.team.get.find.app_error", "Unable to find the existing team.")
        return self.teams[team_id]

    def _channel(self, channel_id: str) -> dict:
        if channel_id not in self.channels:
            raise ApiError(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
        return self.channels[channel_id]

    def _post(self, post_id: str, include_deleted: bool = True) -> dict:
        post = self.posts.get(post_id)
        if post is None or (post["delete_at"] and not include_deleted):
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        return post

    def _is_admin(self, user_id: str) -> bool:
        return "system_admin" in self.users[user_id]["roles"].split()

    def _on_team(self, user_id: str, team_id: str) -> bool:
        return self._is_admin(user_id) or user_id in self.team_members.get(team_id, {})

    def _can_read(self, user_id: str, ch: dict) -> bool:
        return (self._is_admin(user_id) or user_id in self.channel_members[ch["id"]]
                or (ch["type"] == "O" and user_id in self.team_members.get(ch["team_id"], {})))

    def _check_read(self, user_id: str, ch: dict) -> None:
        if not self._can_read(user_id, ch):
            raise _forbidden()

    def _check_self(self, me: str, user_id: str) -> None:
        if me != user_id and not self._is_admin(me):
            raise _forbidden()

    def _new_channel(self, team_id: str, name: str, type: str, display_name: str, creator_id: str,
                     header: str = "", purpose: str = "") -> dict:
        if any(c["team_id"] == team_id and c["name"] == name for c in self.channels.values()):
            raise ApiError(400, "store.sql_channel.save_channel.exists.app_error",
                           "A channel with that name already exists on the same team.")
        now = self._now()
        ch = {"id": new_id(), "create_at": now, "update_at": now, "delete_at": 0, "team_id": team_id,
              "type": type, "display_name": display_name, "name": name, "header": header, "purpose": purpose,
              "last_post_at": 0, "total_msg_count": 0, "extra_update_at": 0, "creator_id": creator_id,
              "scheme_id": None, "props": None, "group_constrained": None, "shared": None,
              "total_msg_count_root": 0, "policy_id": None, "last_root_post_at": 0}
        self.channels[ch["id"]] = ch
        self.channel_members[ch["id"]] = {}
        return ch

    def _join(self, channel_id: str, user_id: str, roles: str = "channel_user") -> dict:
        ch, now = self.channels[channel_id], self._now()
        member = {"channel_id": channel_id, "user_id": user_id, "roles": roles, "last_viewed_at": 0,
                  "msg_count": 0, "mention_count": 0, "mention_count_root": 0, "urgent_mention_count": 0,
                  "msg_count_root": 0, "notify_props": {"desktop": "default", "email": "default",
                                                        "mark_unread": "all", "push": "default"},
                  "last_update_at": now, "scheme_guest": False, "scheme_user": True,
                  "scheme_admin": "channel_admin" in roles, "explicit_roles": ""}
        if ch["type"] in ("D", "G"):
            member["last_viewed_at"] = now
        self.channel_members[channel_id][user_id] = member
        return member

    def _direct(self, user_a: str, user_b: str, creator: str) -> dict:
        self._user(user_a), self._user(user_b)
        name = "__".join(sorted((user_a, user_b)))
        for ch in self.channels.values():
            if ch["type"] == "D" and ch["name"] == name:
                return ch
        ch = self._new_channel("", name, "D", "", creator)
        for uid in {user_a, user_b}:
            self._join(ch["id"], uid)
        other = user_b if creator == user_a else user_a
        self._publish("direct_added", {"creator_id": creator, "teammate_id": other}, channel_id=ch["id"])
        return ch

    def _group(self, ids: list[str], creator: str) -> dict:
        for uid in ids:
            self._user(uid)
        if not 3 <= len(ids) <= 8:
            raise ApiError(400, "api.channel.create_group.bad_size.app_error",
                           "Group message channels must contain at least 3 and no more than 8 users.")
        name = hashlib.sha1("".join(sorted(ids)).encode()).hexdigest()
        for ch in self.channels.values():
            if ch["type"] == "G" and ch["name"] == name:
                return ch
        display = ", ".join(sorted(self.users[u]["username"] for u in ids))
        ch = self._new_channel("", name, "G", display, creator)
        for uid in ids:
            self._join(ch["id"], uid)
        for uid in ids:
            self._publish("group_added", {"teammate_ids": _dumps(ids)}, channel_id=ch["id"], user_id=uid)
        return ch

    def _view(self, user_id: str, channel_id: str) -> dict:
        """ViewChannel: the member's ``last_viewed_at`` moves to now and ``channel_viewed``
        (``data.channel_id``) goes to the viewer alone, as MarkChannelsAsViewed publishes it."""
        member = self.channel_members[self._channel(channel_id)["id"]].get(user_id)
        if member is None:
            raise ApiError(404, "app.channel.get_member.missing.app_error", "No channel member found.")
        ch, now = self.channels[channel_id], self._now()
        member.update(last_viewed_at=now, last_update_at=now, msg_count=ch["total_msg_count"],
                      mention_count=0)
        self._publish("channel_viewed", {"channel_id": channel_id}, user_id=user_id)
        return {"status": "OK", "last_viewed_at_times": {channel_id: now}}

    def _store_file(self, user_id: str, channel_id: str, name: str, data: bytes,
                    mime_type: str | None) -> dict:
        name = os.path.basename(name) or "file"
        ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
        mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        now = self._now()
        info = {"id": new_id(), "user_id": user_id, "post_id": "", "channel_id": channel_id, "create_at": now,
                "update_at": now, "delete_at": 0, "name": name, "extension": ext, "size": len(data),
                "mime_type": mime, "width": 0, "height": 0, "has_preview_image": False, "mini_preview": None,
                "remote_id": "", "archived": False}
        self.file_infos[info["id"]], self.file_data[info["id"]] = info, bytes(data)
        return info

    def _post_out(self, post: dict) -> dict:
        out = copy.deepcopy(post)
        root = post["root_id"] or post["id"]
        replies = [p for p in self._replies.get(root, ()) if not p["delete_at"]]
        out["reply_count"] = len(replies)
        out["last_reply_at"] = max((p["create_at"] for p in replies), default=0)
        out["participants"] = None
        if not out["has_reactions"]:
            del out["has_reactions"]
        meta: dict[str, Any] = {}
        files = [copy.deepcopy(self.file_infos[f]) for f in post["file_ids"] if f in self.file_infos]
        if files:
            meta["files"] = files
        reactions = list(self.reactions.get(post["id"], {}).values())
        if reactions:
            meta["reactions"] = copy.deepcopy(reactions)
        out["metadata"] = meta
        return out

    def _mentioned(self, post: dict, ch: dict) -> list[str]:
        members = self.channel_members[ch["id"]]
        sender = post["user_id"]
        if ch["type"] == "D":
            return [u for u in members if u != sender]
        by_name = {self.users[u]["username"]: u for u in members}
        found: list[str] = []
        for word in _MENTION_RE.findall(post["message"]):
            word = word.lower()
            candidates = [word, word.rstrip("._-")]
            if any(c in ("channel", "all", "here") for c in candidates):
                found.extend(members)
            found.extend(by_name[c] for c in candidates if c in by_name)
        return [u for u in dict.fromkeys(found) if u != sender]

    # ------------------------------------------------------------------ post operations
    def _create_post(self, user_id: str, channel_id: str, message: str, root_id: str = "",
                     file_ids: list[str] | None = None, props: dict | None = None, create_at: int = 0,
                     type: str = "", pending_post_id: str = "") -> dict:
        user, ch = self._user(user_id), self._channel(channel_id)
        if pending_post_id and (user_id, pending_post_id) in self._pending:
            return self._post_out(self.posts[self._pending[(user_id, pending_post_id)]])
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_RUNES:
            raise ApiError(400, "model.post.is_valid.message_length.app_error",
                           f"Post Message property is longer than the maximum permitted length of "
                           f"{MAX_MESSAGE_RUNES} characters.", f"length={len(message)}")
        if ch["delete_at"]:
            raise ApiError(400, "api.post.create_post.can_not_post_to_deleted.error",
                           "Can not post to deleted channel.")
        if root_id:
            root = self.posts.get(root_id)
            if root is None or root["delete_at"] or root["channel_id"] != channel_id or root["root_id"]:
                raise ApiError(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        props = copy.deepcopy(props) if isinstance(props, dict) else {}
        if user["is_bot"]:
            props["from_bot"] = "true"
        now = self._now()
        post = {"id": new_id(), "create_at": create_at or now, "update_at": create_at or now, "edit_at": 0,
                "delete_at": 0, "is_pinned": False, "user_id": user_id, "channel_id": channel_id,
                "root_id": root_id, "original_id": "", "message": message, "type": type, "props": props,
                "hashtags": " ".join(_HASHTAG_RE.findall(message)), "file_ids": [],
                "pending_post_id": pending_post_id, "has_reactions": False}
        for fid in file_ids or []:
            info = self.file_infos.get(fid)
            if info and info["user_id"] == user_id and not info["post_id"] and not info["delete_at"]:
                info.update(post_id=post["id"], channel_id=channel_id)
                post["file_ids"].append(fid)
        self.posts[post["id"]] = post
        if pending_post_id:
            self._pending[(user_id, pending_post_id)] = post["id"]
        if root_id:
            self.posts[root_id]["update_at"] = post["create_at"]
            self._replies.setdefault(root_id, []).append(post)
        ch["last_post_at"] = max(ch["last_post_at"], post["create_at"])
        ch["total_msg_count"] += 1
        if not root_id:
            ch["total_msg_count_root"] += 1
            ch["last_root_post_at"] = max(ch["last_root_post_at"], post["create_at"])
        mentions = self._mentioned(post, ch)
        self._mentions[post["id"]] = mentions
        automated = "from_bot" in props or "from_webhook" in props  # these don't mark the channel viewed
        for uid, member in self.channel_members[channel_id].items():
            if uid == user_id and not automated:
                member.update(msg_count=ch["total_msg_count"], last_viewed_at=post["create_at"],
                              last_update_at=now)
            elif uid in mentions:
                member["mention_count"] += 1
        out = self._post_out(post)
        team_id = ch["team_id"]
        display = {"D": f"@{user['username']}"}.get(ch["type"], ch["display_name"])
        data: dict[str, Any] = {"channel_display_name": display, "channel_name": ch["name"],
                                "channel_type": ch["type"], "post": _dumps(out),
                                "sender_name": f"@{user['username']}", "set_online": True, "team_id": team_id}
        exts = [self.file_infos[f]["extension"] for f in post["file_ids"]]
        if any(e not in _IMAGE_EXT for e in exts):
            data["otherFile"] = "true"
        if any(e in _IMAGE_EXT for e in exts):
            data["image"] = "true"

        def add_mentions(recipient: str, d: dict) -> dict:
            return {**d, "mentions": _dumps([recipient])} if recipient in mentions else d

        self._publish("posted", data, channel_id=channel_id, per_user=add_mentions)
        return out

    def _update_post(self, post: dict, changes: dict, safe: bool = True) -> dict:
        """UpdatePost: ``safe`` (patch) changes only the given fields, else message/props/... are replaced."""
        if post["delete_at"]:
            raise ApiError(400, "api.post.update_post.permissions_details.app_error", "Already deleted.")
        if self.channels[post["channel_id"]]["delete_at"]:
            raise ApiError(400, "api.post.update_post.can_not_update_post_in_deleted.error",
                           "Can not update a post in a deleted channel.")
        message = changes.get("message", post["message"])
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_RUNES:
            raise ApiError(400, "model.post.is_valid.message_length.app_error",
                           "Post Message property is longer than the maximum permitted length.")
        now = self._now()
        old = copy.deepcopy(post)
        old.update(id=new_id(), original_id=post["id"], delete_at=now, update_at=now)
        self.posts[old["id"]] = old
        if message != post["message"]:
            post.update(message=message, edit_at=now, hashtags=" ".join(_HASHTAG_RE.findall(message)))
        if "props" in changes or not safe:
            props = changes.get("props")
            post["props"] = copy.deepcopy(props) if isinstance(props, dict) else {}
            if self.users[post["user_id"]]["is_bot"]:
                post["props"]["from_bot"] = "true"
        for key in ("is_pinned", "has_reactions"):
            if key in changes or not safe:
                post[key] = bool(changes.get(key, False))
        if changes.get("file_ids") is not None and list(changes["file_ids"]) != post["file_ids"]:
            post.update(file_ids=[f for f in changes["file_ids"] if f in self.file_infos], edit_at=now)
        post["update_at"] = now
        if post["root_id"] and post["root_id"] in self.posts:
            root = self.posts[post["root_id"]]
            root["update_at"] = max(root["update_at"], now)
        out = self._post_out(post)
        self._publish("post_edited", {"post": _dumps(out)}, channel_id=post["channel_id"])
        return out

    def _delete_post(self, post: dict, deleted_by: str) -> dict:
        if post["delete_at"]:
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        now = self._now()
        for p in [post] if post["root_id"] else [post, *self._replies.get(post["id"], ())]:
            if p is post or not p["delete_at"]:
                p.update(delete_at=now, update_at=now)
                p["props"]["deleteBy"] = deleted_by
                for fid in p["file_ids"]:
                    if fid in self.file_infos:
                        self.file_infos[fid].update(delete_at=now, update_at=now)
        out = self._post_out(post)
        self._publish("post_deleted", {"post": _dumps(out)}, channel_id=post["channel_id"])
        return out

    def _react(self, user_id: str, post: dict, emoji_name: str) -> dict:
        self._user(user_id)
        if not _EMOJI_RE.match(emoji_name or ""):
            raise ApiError(400, "model.reaction.is_valid.emoji_name.app_error", "Invalid emoji name.")
        if post["delete_at"] or self.channels[post["channel_id"]]["delete_at"]:
            raise ApiError(400, "api.reaction.save_reaction.deleted.app_error", "Can not react to this post.")
        now = self._now()
        reaction = {"user_id": user_id, "post_id": post["id"], "emoji_name": emoji_name, "create_at": now,
                    "update_at": now, "delete_at": 0, "remote_id": "", "channel_id": post["channel_id"]}
        self.reactions.setdefault(post["id"], {})[(user_id, emoji_name)] = reaction
        post.update(has_reactions=True, update_at=now)
        self._publish("reaction_added", {"reaction": _dumps(reaction)}, channel_id=post["channel_id"])
        return copy.deepcopy(reaction)

    def _unreact(self, user_id: str, post: dict, emoji_name: str) -> None:
        reaction = self.reactions.get(post["id"], {}).pop((user_id, emoji_name), None)
        if reaction is None:
            return
        now = self._now()
        post.update(has_reactions=bool(self.reactions[post["id"]]), update_at=now)
        reaction.update(delete_at=now, update_at=now)
        self._publish("reaction_removed", {"reaction": _dumps(reaction)}, channel_id=post["channel_id"])

    def _ephemeral(self, user_id: str, post: dict) -> dict:
        now = self._now()
        out = {"id": post.get("id") or new_id(), "create_at": now, "update_at": now, "edit_at": 0,
               "delete_at": 0, "is_pinned": False, "user_id": post.get("user_id", ""),
               "channel_id": post.get("channel_id", ""), "root_id": post.get("root_id", ""),
               "original_id": "", "message": post.get("message", ""), "type": "system_ephemeral",
               "props": post.get("props") or {}, "hashtags": "", "file_ids": [], "pending_post_id": "",
               "reply_count": 0, "last_reply_at": 0, "participants": None, "metadata": {}}
        self.ephemerals.append((user_id, out))
        self._publish("ephemeral_message", {"post": _dumps(out)}, channel_id=out["channel_id"],
                      user_id=user_id)
        return copy.deepcopy(out)

    # ------------------------------------------------------------------ WebSocket hub
    def _publish(self, event: str, data: dict, *, user_id: str = "", channel_id: str = "",
                 team_id: str = "", omit: Iterable[str] | None = None,
                 per_user: Callable[[str, dict], dict] | None = None) -> None:
        omit_users = {u: True for u in omit} if omit else None
        broadcast = {"omit_users": omit_users, "user_id": user_id, "channel_id": channel_id,
                     "team_id": team_id, "connection_id": "", "omit_connection_id": ""}
        self.events.append((event, data, broadcast))
        for conn in list(self._sockets):
            uid = conn.user_id
            if not uid:
                continue
            if user_id:
                if uid != user_id:
                    continue
            elif omit_users and uid in omit_users:
                continue
            elif channel_id:
                if uid not in self.channel_members.get(channel_id, {}):
                    continue
            elif team_id and uid not in self.team_members.get(team_id, {}):
                continue
            payload = per_user(uid, data) if per_user else data
            conn.queue.put_nowait(_dumps({"event": event, "data": payload, "broadcast": broadcast,
                                              "seq": conn.seq}))
            conn.seq += 1

    def _publish_channel_scope(self, event: str, ch: dict, data: dict) -> None:
        if ch["type"] == "O":
            self._publish(event, data, team_id=ch["team_id"])
        else:
            self._publish(event, data, channel_id=ch["id"])

    def _drop(self, graceful: bool, user_id: str | None = None) -> int:
        conns = [c for c in self._sockets if user_id is None or c.user_id == user_id]
        for conn in conns:
            self._sockets.discard(conn)
            conn.queue.put_nowait(None)
            if graceful:
                conn.closing = asyncio.ensure_future(asyncio.wait_for(conn.ws.close(code=1001), 2))
            elif conn.transport is not None:
                conn.transport.abort()
        return len(conns)

    async def _writer(self, conn: _Conn) -> None:
        try:
            while (text := await conn.queue.get()) is not None:
                await conn.ws.send_str(text)
        except Exception:  # the peer went away; the reader side cleans up
            pass

    def _register(self, conn: _Conn, user_id: str) -> None:
        conn.user_id = user_id
        hello = {"server_version": SERVER_VERSION, "connection_id": conn.connection_id,
                 "server_hostname": socket.gethostname()}
        broadcast = {"omit_users": None, "user_id": user_id, "channel_id": "", "team_id": "",
                     "connection_id": "", "omit_connection_id": ""}
        conn.queue.put_nowait(_dumps({"event": "hello", "data": hello, "broadcast": broadcast, "seq": 0}))
        conn.seq = 1

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        if self._ws_paused:
            raise ApiError(503, "api.web_socket.unavailable.app_error", "WebSocket connections are paused.")
        token = self._token_of(request)
        user_id = self._session_user(token) if token else ""
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        conn = _Conn(ws, request.transport)
        self._sockets.add(conn)
        conn.writer = asyncio.ensure_future(self._writer(conn))
        if user_id:
            self._register(conn, user_id)
        try:
            async for msg in ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                try:
                    req = json.loads(msg.data)
                    assert isinstance(req, dict)
                except (ValueError, AssertionError):
                    continue
                if not self._ws_action(conn, req):
                    await ws.close()
                    break
        finally:
            self._sockets.discard(conn)
            conn.queue.put_nowait(None)
        return ws

    def _ws_action(self, conn: _Conn, req: dict) -> bool:
        """Handle one client request; False closes the socket (bad authentication challenge)."""
        action, seq, data = req.get("action"), req.get("seq"), req.get("data") or {}

        def reply(status: str = "OK", payload: Any = None, error: tuple[str, str] | None = None) -> None:
            resp: dict[str, Any] = {"status": status, "seq_reply": seq}
            if payload is not None:
                resp["data"] = payload
            if error:
                resp["error"] = {"id": error[0], "message": error[1]}
            conn.queue.put_nowait(_dumps(resp))

        if not action:
            reply("FAIL", error=("api.web_socket_router.no_action.app_error", "No websocket action."))
        elif not isinstance(seq, int) or seq <= 0:
            reply("FAIL", error=("api.web_socket_router.bad_seq.app_error", "Invalid websocket sequence."))
        elif action == "authentication_challenge":
            if conn.user_id:
                return True
            try:
                user_id = self._session_user(str(data.get("token", "")))
            except ApiError:
                return False
            self._register(conn, user_id)
            reply()
        elif not conn.user_id:
            reply("FAIL", error=("api.web_socket_router.not_authenticated.app_error",
                                 "No websocket authentication."))
        elif action == "user_typing":
            channel_id = str(data.get("channel_id", ""))
            ch = self.channels.get(channel_id)
            if ch is None or not self._can_read(conn.user_id, ch):
                reply("FAIL", error=("api.websocket_handler.invalid_param.app_error", "Invalid channel_id."))
            else:
                self._publish("typing", {"parent_id": data.get("parent_id", ""), "user_id": conn.user_id},
                              channel_id=channel_id, omit=[conn.user_id])
                reply()
        elif action in ("get_statuses", "get_statuses_by_ids"):
            online = {c.user_id for c in self._sockets if c.user_id}
            ids = data.get("user_ids") if action == "get_statuses_by_ids" else list(self.users)
            reply(payload={u: "online" if u in online else "offline" for u in ids or [] if u in self.users})
        elif action == "ping":
            reply(payload={"text": "pong", "version": SERVER_VERSION, "server_time": self._now()})
        else:
            reply("FAIL", error=("api.web_socket_router.bad_action.app_error", "Unknown websocket action."))
        return True

    # ------------------------------------------------------------------ HTTP plumbing
    def _build_app(self) -> web.Application:
        @web.middleware
        async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
            request_id = new_id()
            if request.path != "/api/v4/websocket":
                body = None
                if request.content_type == "application/json" and request.can_read_body:
                    try:
                        body = json.loads(await request.read() or b"null")
                    except ValueError:
                        body = None
                self.requests.append(RecordedRequest(request.method, request.path, body))
            try:
                resp = await handler(request)
            except ApiError as e:
                resp = _json_response(e.body(request_id), e.status)
            except web.HTTPException as e:
                if e.status < 400:
                    raise
                err_id = f"api.context.{e.status}.app_error"
                msg = "Sorry, we could not find the page." if e.status == 404 else e.reason
                resp = _json_response(ApiError(e.status, err_id, msg).body(request_id), e.status)
            except Exception as e:  # a bug in the double: answer 500 and keep it for the test to see
                self.server_errors.append(f"{request.method} {request.path}: {traceback.format_exc()}")
                resp = _json_response(ApiError(500, "api.context.500.app_error", repr(e)).body(request_id),
                                      500)
            if not resp.prepared:
                resp.headers["X-Request-Id"] = request_id
                resp.headers["X-Version-Id"] = SERVER_VERSION
            return resp

        app = web.Application(middlewares=[middleware], client_max_size=64 * 1024 * 1024)
        r, v4 = app.router, "/api/v4"
        r.add_get(v4 + "/system/ping", self._ping)
        r.add_get(v4 + "/websocket", self._ws_handler)
        r.add_get(v4 + "/users", self._get_users)
        r.add_post(v4 + "/users/ids", self._get_users_by_ids)
        r.add_get(v4 + "/users/username/{username}", self._get_user_by_name)
        r.add_get(v4 + "/users/{user_id}", self._get_user)
        r.add_get(v4 + "/users/{user_id}/teams", self._get_user_teams)
        r.add_get(v4 + "/users/{user_id}/teams/members", self._get_user_team_members)
        r.add_get(v4 + "/users/{user_id}/teams/{team_id}/channels", self._get_user_team_channels)
        r.add_get(v4 + "/users/{user_id}/channels", self._get_user_channels)
        r.add_delete(v4 + "/users/{user_id}/posts/{post_id}/reactions/{emoji_name}", self._delete_reaction)
        r.add_get(v4 + "/teams", self._get_teams)
        r.add_get(v4 + "/teams/{team_id}", self._get_team)
        r.add_get(v4 + "/teams/{team_id}/members", self._get_team_members)
        r.add_get(v4 + "/teams/{team_id}/channels", self._get_team_channels)
        r.add_get(v4 + "/teams/{team_id}/channels/private", self._get_team_private_channels)
        r.add_get(v4 + "/teams/{team_id}/channels/deleted", self._get_team_deleted_channels)
        r.add_post(v4 + "/channels/direct", self._create_direct)
        r.add_post(v4 + "/channels/group", self._create_group)
        r.add_post(v4 + "/channels/members/{user_id}/view", self._view_channel_api)
        r.add_get(v4 + "/channels/{channel_id}", self._get_channel)
        r.add_get(v4 + "/channels/{channel_id}/members", self._get_channel_members)
        r.add_get(v4 + "/channels/{channel_id}/members/{user_id}", self._get_channel_member)
        r.add_get(v4 + "/channels/{channel_id}/posts", self._get_channel_posts)
        r.add_post(v4 + "/posts", self._create_post_api)
        r.add_post(v4 + "/posts/ephemeral", self._create_ephemeral)
        r.add_get(v4 + "/posts/{post_id}", self._get_post)
        r.add_put(v4 + "/posts/{post_id}", self._put_post)
        r.add_delete(v4 + "/posts/{post_id}", self._delete_post_api)
        r.add_put(v4 + "/posts/{post_id}/patch", self._patch_post)
        r.add_get(v4 + "/posts/{post_id}/thread", self._get_thread)
        r.add_get(v4 + "/posts/{post_id}/reactions", self._get_reactions)
        r.add_post(v4 + "/reactions", self._save_reaction)
        r.add_post(v4 + "/files", self._upload)
        r.add_get(v4 + "/files/{file_id}", self._get_file)
        r.add_get(v4 + "/files/{file_id}/info", self._get_file_info)
        r.add_post(v4 + "/commands", self._create_command)
        r.add_get(v4 + "/commands", self._list_commands)
        r.add_get(v4 + "/bots/{bot_user_id}", self._get_bot)
        r.add_post("/hooks/commands/{hook_id}", self._command_hook)
        r.add_get("/oauth/authorize", self._oauth_authorize)
        r.add_post("/oauth/access_token", self._oauth_access_token)
        return app

    @staticmethod
    def _token_of(request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return request.cookies.get("MMAUTHTOKEN") or request.query.get("access_token", "")

    def _session_user(self, token: str) -> str:
        user_id = self.tokens.get(token)
        if not user_id or self.users[user_id]["delete_at"]:
            raise _unauthorized()
        return user_id

    def _me(self, request: web.Request) -> str:
        return self._session_user(self._token_of(request))

    @staticmethod
    def _uid(request: web.Request, me: str, key: str = "user_id") -> str:
        value = request.match_info[key]
        return me if value == "me" else value

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except ValueError:
            raise _bad_param("body") from None

    @staticmethod
    def _int(request: web.Request, name: str, default: int = 0) -> int:
        raw = request.query.get(name, "")
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _bad_param(name, "url") from None

    def _paging(self, request: web.Request) -> tuple[int, int]:
        page, per_page = self._int(request, "page", 0), self._int(request, "per_page", 60)
        if page < 0 or per_page < 0:
            raise _bad_param("page", "url")
        return page, min(per_page, 200)

    def _page(self, request: web.Request, items: list) -> list:
        page, per_page = self._paging(request)
        return items[page * per_page:(page + 1) * per_page]

    @staticmethod
    def _flag(request: web.Request, name: str) -> bool:
        return request.query.get(name, "").lower() == "true"

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        return _json_response(data, status)

    # ------------------------------------------------------------------ users / teams / bots
    async def _ping(self, request: web.Request) -> web.Response:
        return self._json({"status": "OK"})

    async def _get_users(self, request: web.Request) -> web.Response:
        me, q = self._me(request), request.query
        users = sorted(self.users.values(), key=lambda u: u["username"])
        for key in ("in_team", "not_in_team"):
            if q.get(key):
                if not self._on_team(me, self._team(q[key])["id"]):
                    raise _forbidden()
                inside = self.team_members[q[key]]
                users = [u for u in users if (u["id"] in inside) == (key == "in_team")]
        for key in ("in_channel", "not_in_channel"):
            if q.get(key):
                self._check_read(me, self._channel(q[key]))
                inside = self.channel_members[q[key]]
                users = [u for u in users if (u["id"] in inside) == (key == "in_channel")]
        if self._flag(request, "active"):
            users = [u for u in users if not u["delete_at"]]
        if self._flag(request, "inactive"):
            users = [u for u in users if u["delete_at"]]
        return self._json(self._page(request, users))

    async def _get_users_by_ids(self, request: web.Request) -> web.Response:
        self._me(request)
        ids = await self._body(request)
        if not isinstance(ids, list) or not ids:
            raise _bad_param("user_ids")
        since = self._int(request, "since", 0)
        found = [self.users[i] for i in dict.fromkeys(ids) if i in self.users]
        return self._json([u for u in found if u["update_at"] > since])

    async def _get_user(self, request: web.Request) -> web.Response:
        me = self._me(request)
        return self._json(self._user(self._uid(request, me)))

    async def _get_user_by_name(self, request: web.Request) -> web.Response:
        self._me(request)
        name = request.match_info["username"].lower()
        for user in self.users.values():
            if user["username"] == name:
                return self._json(user)
        raise ApiError(404, "app.user.get_by_username.app_error", "Unable to find the user.")

    async def _get_user_teams(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid = self._uid(request, me)
        self._check_self(me, uid)
        self._user(uid)
        teams = [t for tid, t in self.teams.items() if uid in self.team_members[tid] and not t["delete_at"]]
        return self._json(teams)

    async def _get_user_team_members(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid = self._uid(request, me)
        self._check_self(me, uid)
        self._user(uid)
        return self._json([m[uid] for m in self.team_members.values() if uid in m])

    def _user_channels(self, request: web.Request, uid: str, team_id: str | None) -> list[dict]:
        deleted = self._flag(request, "include_deleted")
        rows = [c for c in self.channels.values() if uid in self.channel_members[c["id"]]
                and (team_id is None or c["team_id"] in (team_id, "")) and (deleted or not c["delete_at"])]
        return sorted(rows, key=lambda c: (c["display_name"], c["name"]))

    async def _get_user_team_channels(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid, team_id = self._uid(request, me), request.match_info["team_id"]
        self._check_self(me, uid)
        self._team(team_id)
        if not self._on_team(me, team_id):
            raise _forbidden()
        return self._json(self._user_channels(request, uid, team_id))

    async def _get_user_channels(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid = self._uid(request, me)
        self._check_self(me, uid)
        self._user(uid)
        return self._json(self._user_channels(request, uid, None))

    async def _get_teams(self, request: web.Request) -> web.Response:
        me = self._me(request)
        teams = [t for t in self.teams.values()
                 if not t["delete_at"] and (self._is_admin(me) or t["allow_open_invite"])]
        return self._json(self._page(request, sorted(teams, key=lambda t: t["display_name"])))

    async def _get_team(self, request: web.Request) -> web.Response:
        me = self._me(request)
        team = self._team(request.match_info["team_id"])
        if not (self._on_team(me, team["id"]) or team["allow_open_invite"]):
            raise _forbidden()
        return self._json(team)

    def _team_for_listing(self, request: web.Request) -> tuple[str, str]:
        me, team_id = self._me(request), request.match_info["team_id"]
        self._team(team_id)
        if not self._on_team(me, team_id):
            raise _forbidden()
        return me, team_id

    async def _get_team_members(self, request: web.Request) -> web.Response:
        _, team_id = self._team_for_listing(request)
        members = sorted(self.team_members[team_id].values(), key=lambda m: m["user_id"])
        return self._json(self._page(request, members))

    def _team_channels(self, team_id: str, test: Callable[[dict], bool]) -> list[dict]:
        rows = [c for c in self.channels.values() if c["team_id"] == team_id and test(c)]
        return sorted(rows, key=lambda c: (c["display_name"], c["name"]))

    async def _get_team_channels(self, request: web.Request) -> web.Response:
        _, team_id = self._team_for_listing(request)
        rows = self._team_channels(team_id, lambda c: c["type"] == "O" and not c["delete_at"])
        return self._json(self._page(request, rows))

    async def _get_team_private_channels(self, request: web.Request) -> web.Response:
        me, team_id = self._me(request), request.match_info["team_id"]
        if not self._is_admin(me):
            raise _forbidden()
        self._team(team_id)
        rows = self._team_channels(team_id, lambda c: c["type"] == "P" and not c["delete_at"])
        return self._json(self._page(request, rows))

    async def _get_team_deleted_channels(self, request: web.Request) -> web.Response:
        me, team_id = self._team_for_listing(request)
        rows = self._team_channels(team_id, lambda c: bool(c["delete_at"]) and (
            c["type"] == "O" or me in self.channel_members[c["id"]]))
        return self._json(self._page(request, rows))

    async def _get_bot(self, request: web.Request) -> web.Response:
        me = self._me(request)
        bot = self.bots.get(request.match_info["bot_user_id"])
        if bot is None or (bot["delete_at"] and not self._flag(request, "include_deleted")):
            raise ApiError(404, "store.sql_bot.get.missing.app_error", "Bot does not exist.")
        if me not in (bot["user_id"], bot["owner_id"]) and not self._is_admin(me):
            raise _forbidden()
        return self._json(bot)

    # ------------------------------------------------------------------ channels
    async def _create_direct(self, request: web.Request) -> web.Response:
        me, ids = self._me(request), await self._body(request)
        if not isinstance(ids, list) or len(ids) != 2 or not all(isinstance(i, str) for i in ids):
            raise _bad_param("user_ids")
        if me not in ids and not self._is_admin(me):
            raise _forbidden()
        for uid in ids:
            if uid not in self.users:
                raise _bad_param("user_id")
        return self._json(self._direct(ids[0], ids[1], creator=me), status=201)

    async def _create_group(self, request: web.Request) -> web.Response:
        me, ids = self._me(request), await self._body(request)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _bad_param("user_ids")
        ids = list(dict.fromkeys(ids + ([] if me in ids else [me])))
        if any(uid not in self.users for uid in ids):
            raise _bad_param("user_ids")
        return self._json(self._group(ids, creator=me), status=201)

    async def _get_channel(self, request: web.Request) -> web.Response:
        me = self._me(request)
        ch = self._channel(request.match_info["channel_id"])
        self._check_read(me, ch)
        return self._json(ch)

    async def _get_channel_members(self, request: web.Request) -> web.Response:
        me = self._me(request)
        ch = self._channel(request.match_info["channel_id"])
        self._check_read(me, ch)
        members = sorted(self.channel_members[ch["id"]].values(), key=lambda m: m["user_id"])
        return self._json(self._page(request, members))

    async def _get_channel_member(self, request: web.Request) -> web.Response:
        me = self._me(request)
        ch = self._channel(request.match_info["channel_id"])
        self._check_read(me, ch)
        member = self.channel_members[ch["id"]].get(self._uid(request, me))
        if member is None:
            raise ApiError(404, "app.channel.get_member.missing.app_error", "No channel member found.")
        return self._json(member)

    async def _view_channel_api(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid = request.match_info["user_id"]
        self._check_self(me, uid)  # or edit_other_users: only system_admin here
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("channel_id"), str):
            raise _bad_param("channel_id")
        if not body["channel_id"]:  # every channel lost focus: nothing is viewed
            return self._json({"status": "OK", "last_viewed_at_times": {}})
        return self._json(self._view(uid, body["channel_id"]))

    async def _get_channel_posts(self, request: web.Request) -> web.Response:
        me = self._me(request)
        ch = self._channel(request.match_info["channel_id"])
        self._check_read(me, ch)
        q = request.query
        since, before, after = self._int(request, "since", 0), q.get("before", ""), q.get("after", "")
        for name, value in (("before", before), ("after", after)):
            if value and not _ID_RE.match(value):
                raise _bad_param(name, "url")
        page, per_page = self._paging(request)
        skip_threads = self._flag(request, "skipFetchThreads")
        include_deleted = self._flag(request, "include_deleted")
        if include_deleted and not self._is_admin(me):
            raise _forbidden()
        rows = [p for p in self.posts.values() if p["channel_id"] == ch["id"]]
        live = [p for p in rows if include_deleted or not p["delete_at"]]
        newest_first: Callable[[dict], tuple] = lambda p: (-p["create_at"], p["id"])  # noqa: E731
        extra: list[dict] = []
        if since > 0:
            changed = sorted((p for p in rows if p["update_at"] > since), key=newest_first)[:1000]
            order = [p["id"] for p in changed]
            roots = {p["root_id"] for p in changed if p["root_id"]}
            extra = [self.posts[r] for r in roots if r in self.posts]
        elif before or after:
            pivot = self.posts.get(before or after)
            if pivot is None or pivot["channel_id"] != ch["id"]:
                chosen = []
            elif before:
                chosen = sorted((p for p in live if p["create_at"] < pivot["create_at"]), key=newest_first)
                chosen = chosen[page * per_page:(page + 1) * per_page]
            else:
                chosen = sorted((p for p in live if p["create_at"] > pivot["create_at"]),
                                key=lambda p: (p["create_at"], p["id"]))
                chosen = sorted(chosen[page * per_page:(page + 1) * per_page], key=newest_first)
            order = [p["id"] for p in chosen]
            ids = {p["id"] for p in chosen} | {p["root_id"] for p in chosen if p["root_id"]}
            extra = [p for p in live if p["id"] in ids or (not skip_threads and p["root_id"] in ids)]
        else:
            chosen = sorted(live, key=newest_first)[page * per_page:(page + 1) * per_page]
            order = [p["id"] for p in chosen]
            roots = {p["root_id"] for p in chosen if p["root_id"]}
            extra = [p for p in live if p["id"] in roots or (not skip_threads and p["root_id"] in roots)]
        posts = {pid: self._post_out(self.posts[pid]) for pid in order}
        posts.update({p["id"]: self._post_out(p) for p in extra if p["id"] not in posts})
        next_id = prev_id = ""
        if not since:
            next_set = prev_set = False
            if after:
                prev_id, prev_set = (after, True) if page == 0 else ("", False)
                next_set = len(order) < per_page
            elif before:
                next_id, next_set = (before, True) if page == 0 else ("", False)
                prev_set = len(order) < per_page
            alive = [p for p in rows if not p["delete_at"]]
            if not next_set and order:
                t = self.posts[order[0]]["create_at"]
                later = [p for p in alive if p["create_at"] > t]
                next_id = min(later, key=lambda p: p["create_at"])["id"] if later else ""
            if not prev_set and order:
                t = self.posts[order[-1]]["create_at"]
                earlier = [p for p in alive if p["create_at"] < t]
                prev_id = max(earlier, key=lambda p: p["create_at"])["id"] if earlier else ""
        return self._json({"order": order, "posts": posts, "next_post_id": next_id, "prev_post_id": prev_id,
                           "first_inaccessible_post_time": 0})

    # ------------------------------------------------------------------ posts
    async def _create_post_api(self, request: web.Request) -> web.Response:
        me, body = self._me(request), await self._body(request)
        if not isinstance(body, dict):
            raise _bad_param("post")
        ch = self.channels.get(str(body.get("channel_id", "")))
        if ch is None or not (me in self.channel_members[ch["id"]] or self._is_admin(me)
                              or (ch["type"] == "O" and me in self.team_members.get(ch["team_id"], {}))):
            raise _forbidden()
        ptype = body.get("type", "") or ""
        if ptype and not ptype.startswith("custom_") and ptype != "slack_attachment":
            raise ApiError(400, "model.post.is_valid.type.app_error", "Invalid type.")
        file_ids = body.get("file_ids") or []
        if not isinstance(file_ids, list) or len(file_ids) > 10:
            raise _bad_param("file_ids")
        create_at = int(body.get("create_at") or 0) if self._is_admin(me) else 0
        post = self._create_post(me, ch["id"], body.get("message", ""),
                                 root_id=str(body.get("root_id") or ""), file_ids=file_ids,
                                 props=body.get("props"), create_at=create_at, type=ptype,
                                 pending_post_id=str(body.get("pending_post_id") or ""))
        return self._json(post, status=201)

    async def _create_ephemeral(self, request: web.Request) -> web.Response:
        """CreatePostEphemeral as posts.yaml documents it: ``{user_id, post: {channel_id,
        message}}``, both post fields required; nothing else of the post is taken."""
        me, body = self._me(request), await self._body(request)
        if not isinstance(body, dict) or not body.get("user_id"):
            raise _bad_param("user_id")
        post = body.get("post")
        if not isinstance(post, dict) or not post.get("channel_id"):
            raise _bad_param("post.channel_id")
        if not isinstance(post.get("message"), str):
            raise _bad_param("post.message")
        if not self._is_admin(me):  # create_post_ephemeral is a system-admin permission
            raise _forbidden()
        self._user(str(body["user_id"])), self._channel(str(post["channel_id"]))
        out = {"channel_id": str(post["channel_id"]), "message": post["message"], "user_id": me}
        return self._json(self._ephemeral(str(body["user_id"]), out), status=201)

    async def _get_post(self, request: web.Request) -> web.Response:
        me = self._me(request)
        include_deleted = self._flag(request, "include_deleted")
        if include_deleted and not self._is_admin(me):
            raise _forbidden()
        post = self._post(request.match_info["post_id"], include_deleted=include_deleted)
        self._check_read(me, self.channels[post["channel_id"]])
        return self._json(self._post_out(post))

    def _editable(self, me: str, post_id: str) -> dict:
        post = self.posts.get(post_id)
        if post is None or post["delete_at"]:
            raise _forbidden()  # the server answers a permission error when the post can't be loaded
        ch = self.channels[post["channel_id"]]
        if not self._is_admin(me) and (me not in self.channel_members[ch["id"]] or post["user_id"] != me):
            raise _forbidden()
        return post

    async def _patch_post(self, request: web.Request) -> web.Response:
        me, body = self._me(request), await self._body(request)
        if not isinstance(body, dict):
            raise _bad_param("post")
        post = self._editable(me, request.match_info["post_id"])
        changes = {k: body[k] for k in ("message", "props", "is_pinned", "has_reactions", "file_ids")
                   if body.get(k) is not None}
        return self._json(self._update_post(post, changes, safe=True))

    async def _put_post(self, request: web.Request) -> web.Response:
        me, body = self._me(request), await self._body(request)
        if not isinstance(body, dict) or body.get("id") != request.match_info["post_id"]:
            raise _bad_param("id")
        post = self._editable(me, request.match_info["post_id"])
        changes = {k: body.get(k) for k in ("message", "props", "is_pinned", "has_reactions")}
        changes["message"] = changes["message"] or ""
        changes["file_ids"] = body.get("file_ids")
        return self._json(self._update_post(post, changes, safe=False))

    async def _delete_post_api(self, request: web.Request) -> web.Response:
        me = self._me(request)
        post = self._post(request.match_info["post_id"], include_deleted=False)
        ch = self.channels[post["channel_id"]]
        own = post["user_id"] == me and me in self.channel_members[ch["id"]]
        if not (own or self._is_admin(me)):  # delete_others_posts: team/system admins
            raise _forbidden()
        self._delete_post(post, me)
        return self._json({"status": "OK"})

    async def _get_thread(self, request: web.Request) -> web.Response:
        me = self._me(request)
        post = self._post(request.match_info["post_id"], include_deleted=False)
        self._check_read(me, self.channels[post["channel_id"]])
        per_page, from_at = self._int(request, "perPage", 0), self._int(request, "fromCreateAt", 0)
        direction, from_post = request.query.get("direction", ""), request.query.get("fromPost", "")
        if direction not in ("", "up", "down") or not 0 <= per_page <= 200 or (from_post and not from_at):
            raise _bad_param("direction", "url")
        root_id = post["root_id"] or post["id"]
        rows = [p for p in self.posts.values() if not p["delete_at"] and root_id in (p["id"], p["root_id"])]
        key: Callable[[dict], tuple] = lambda p: (p["create_at"], p["id"])  # noqa: E731
        down = direction == "down"
        if from_at and from_post:
            pivot = (from_at, from_post)
            rows = [p for p in rows if (key(p) > pivot if down else key(p) < pivot)]
        elif from_at:
            rows = [p for p in rows if (p["create_at"] > from_at if down else p["create_at"] < from_at)]
        rows.sort(key=key, reverse=direction == "up")
        has_next = bool(per_page) and len(rows) > per_page
        rows = rows[:per_page] if per_page else rows
        # like the store: the requested post first, then the (page of the) thread without it
        order = [post["id"]] + [p["id"] for p in rows if p["id"] != post["id"]]
        posts = {p["id"]: self._post_out(p) for p in [post, *rows]}
        return self._json({"order": order, "posts": posts, "next_post_id": "", "prev_post_id": "",
                           "has_next": has_next, "first_inaccessible_post_time": 0})

    # ------------------------------------------------------------------ reactions / files
    async def _get_reactions(self, request: web.Request) -> web.Response:
        me = self._me(request)
        post = self._post(request.match_info["post_id"], include_deleted=False)
        self._check_read(me, self.channels[post["channel_id"]])
        rows = sorted(self.reactions.get(post["id"], {}).values(), key=lambda r: r["create_at"])
        return self._json(rows)

    async def _save_reaction(self, request: web.Request) -> web.Response:
        me, body = self._me(request), await self._body(request)
        if not isinstance(body, dict) or not body.get("post_id") or not body.get("emoji_name"):
            raise _bad_param("reaction")
        if body.get("user_id") != me:
            raise _forbidden()
        post = self.posts.get(str(body["post_id"]))
        if post is None or not self._can_read(me, self.channels[post["channel_id"]]):
            raise _forbidden()
        return self._json(self._react(me, post, str(body["emoji_name"])), status=201)

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        me = self._me(request)
        uid = self._uid(request, me)
        self._check_self(me, uid)
        post = self._post(request.match_info["post_id"])
        self._check_read(me, self.channels[post["channel_id"]])
        self._unreact(uid, post, request.match_info["emoji_name"])
        return self._json({"status": "OK"})

    async def _upload(self, request: web.Request) -> web.Response:
        me = self._me(request)
        channel_id, uploads, client_ids = request.query.get("channel_id", ""), [], []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "channel_id":
                    channel_id = (await part.text()).strip()
                elif part.name == "client_ids":
                    client_ids.append((await part.text()).strip())
                elif part.name == "files":
                    mime = part.headers.get("Content-Type")
                    uploads.append((part.filename or "file", await part.read(decode=False), mime))
        else:
            filename = request.query.get("filename", "")
            if not filename:
                raise _bad_param("filename", "url")
            uploads.append((filename, await request.read(), request.headers.get("Content-Type")))
        ch = self.channels.get(channel_id)
        if ch is None or not (me in self.channel_members[ch["id"]] or self._is_admin(me)):
            raise _forbidden()
        if not uploads:
            raise ApiError(400, "api.file.upload_file.incorrect_number_of_files.app_error",
                           "Unable to upload files. Incorrect number of files specified.")
        generic = (None, "application/octet-stream")
        infos = [self._store_file(me, ch["id"], name, data, None if mime in generic else mime)
                 for name, data, mime in uploads]
        return self._json({"file_infos": infos, "client_ids": client_ids}, status=201)

    def _readable_file(self, request: web.Request) -> dict:
        me = self._me(request)
        info = self.file_infos.get(request.match_info["file_id"])
        if info is None or info["delete_at"]:
            raise ApiError(404, "app.file_info.get.app_error", "Unable to get the file info.")
        if info["user_id"] != me and not self._can_read(me, self.channels[info["channel_id"]]):
            raise _forbidden()
        return info

    async def _get_file(self, request: web.Request) -> web.Response:
        info = self._readable_file(request)
        disposition = "inline" if self._flag(request, "preview") else "attachment"
        return web.Response(body=self.file_data[info["id"]], content_type=info["mime_type"].split(";")[0],
                            headers={"Content-Disposition": f'{disposition};filename="{info["name"]}"'})

    async def _get_file_info(self, request: web.Request) -> web.Response:
        return self._json(self._readable_file(request))

    # ------------------------------------------------------------------ slash commands
    def _can_manage_commands(self, user_id: str, team_id: str) -> bool:
        member = self.team_members.get(team_id, {}).get(user_id)
        return self._is_admin(user_id) or (member is not None and "team_admin" in member["roles"].split())

    async def _create_command(self, request: web.Request) -> web.Response:
        me, body = self._me(request), await self._body(request)
        required = ("team_id", "trigger", "url", "method")
        if not isinstance(body, dict) or not all(body.get(k) for k in required):
            raise _bad_param("command")
        self._team(str(body["team_id"]))
        if not self._can_manage_commands(me, body["team_id"]):
            raise _forbidden()
        extra = {k: v for k, v in body.items() if k not in (*required, "creator_id")}
        cmd = self.register_command(body["team_id"], str(body["trigger"]), str(body["url"]), me,
                                    method=str(body["method"]), **extra)
        return self._json(cmd, status=201)

    async def _list_commands(self, request: web.Request) -> web.Response:
        me, team_id = self._me(request), request.query.get("team_id", "")
        self._team(team_id)
        if not self._can_manage_commands(me, team_id):
            raise _forbidden()
        rows = [c for c in self.commands.values() if c["team_id"] == team_id and not c["delete_at"]]
        return self._json(sorted(rows, key=lambda c: c["trigger"]))

    async def _execute_command(self, user_id: str, channel_id: str, text: str, root_id: str,
                               timeout: float) -> dict:
        user, ch = self._user(user_id), self._channel(channel_id)
        if not text.startswith("/") or len(text) < 2:
            raise ValueError(f"not a slash command: {text!r}")
        trigger, _, rest = text[1:].partition(" ")
        teams = [ch["team_id"]] if ch["team_id"] else [t for t, m in self.team_members.items()
                                                       if user_id in m]
        cmd = next((c for c in self.commands.values() if c["team_id"] in teams
                    and c["trigger"] == trigger.lower() and not c["delete_at"]), None)
        if cmd is None:
            raise ApiError(404, "api.command.execute_command.not_found.app_error",
                           f"Command with a trigger of '{trigger}' not found.")
        if not self._can_read(user_id, ch) or user_id not in self.channel_members[channel_id]:
            raise _forbidden()
        team = self.teams[cmd["team_id"]]
        hook_id = new_id()
        self.command_hooks[hook_id] = {"id": hook_id, "command_id": cmd["id"], "user_id": user_id,
                                       "channel_id": channel_id, "root_id": root_id, "uses": 0,
                                       "create_at": self._now()}
        trigger_raw = f"{new_id()}:{user_id}:{self._now()}:{secrets.token_hex(16)}"
        form = {"channel_id": channel_id, "channel_name": ch["name"], "command": f"/{cmd['trigger']}",
                "response_url": f"{self.url}/hooks/commands/{hook_id}", "team_domain": team["name"],
                "team_id": team["id"], "text": rest, "token": cmd["token"],
                "trigger_id": base64.b64encode(trigger_raw.encode()).decode(), "user_id": user_id,
                "user_name": user["username"]}
        # exactly the reference's fields: a command typed in a thread reaches the integration
        # without its root_id (the server keeps it only to place the command's own responses)
        headers = {"Authorization": f"Token {cmd['token']}", "Accept": "application/json",
                   "User-Agent": "Mattermost-Bot/1.1"}
        assert self._session is not None
        kwargs: dict[str, Any] = {"headers": headers, "timeout": aiohttp.ClientTimeout(total=timeout),
                                  "ssl": True if self.command_ssl is None else self.command_ssl}
        if cmd["method"] == "G":
            kwargs["params"] = form
        else:
            kwargs["data"] = form
        method = "GET" if cmd["method"] == "G" else "POST"
        async with self._session.request(method, cmd["url"], **kwargs) as resp:
            raw = await resp.read()
            ctype = resp.content_type
            if resp.status != 200:
                raise ApiError(500, "api.command.execute_command.failed_resp.app_error",
                               f"Command with a trigger of '{trigger}' returned response {resp.status}.",
                               raw.decode("utf-8", "replace"))
        response = self._parse_command_response(ctype, raw)
        self._command_response(cmd, user_id, channel_id, root_id, response)
        return response

    @staticmethod
    def _parse_command_response(content_type: str, raw: bytes) -> dict:
        if not raw.strip():
            return {}
        if content_type == "application/json":
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise ApiError(400, "api.command.execute_command.failed.app_error", "Invalid JSON.") from None
            return parsed if isinstance(parsed, dict) else {}
        return {"text": raw.decode("utf-8", "replace")}

    def _command_response(self, cmd: dict, user_id: str, channel_id: str, root_id: str,
                          response: dict) -> None:
        """HandleCommandResponse: the post goes in as the invoking user, marked from_webhook."""
        for resp in [response, *(response.get("extra_responses") or [])]:
            if not isinstance(resp, dict):
                continue
            props = dict(resp.get("props") or {})
            props["from_webhook"] = "true"
            if resp.get("username"):
                props["override_username"] = resp["username"]
            if resp.get("icon_url"):
                props["override_icon_url"] = resp["icon_url"]
            ptype = resp.get("type") or ""
            if resp.get("attachments"):
                props["attachments"], ptype = resp["attachments"], "slack_attachment"
            target = resp.get("channel_id") or channel_id
            text = resp.get("text") or ""
            if resp.get("response_type") == "in_channel":
                self._create_post(user_id, target, text, root_id=root_id, props=props, type=ptype)
            elif text or resp.get("attachments"):
                self._ephemeral(user_id, {"channel_id": target, "root_id": root_id, "message": text,
                                          "props": props, "user_id": user_id})

    async def _command_hook(self, request: web.Request) -> web.Response:
        hook = self.command_hooks.get(request.match_info["hook_id"])
        if hook is None or self._now() - hook["create_at"] > 30 * 60 * 1000:
            raise ApiError(400, "app.command_webhook.get.missing", "Unable to find the webhook.")
        if hook["uses"] >= 5:
            raise ApiError(400, "app.command_webhook.try_use.invalid", "Invalid use of the webhook.")
        hook["uses"] += 1
        response = self._parse_command_response(request.content_type, await request.read())
        self._command_response(self.commands[hook["command_id"]], hook["user_id"], hook["channel_id"],
                               hook["root_id"], response)
        return web.Response(text="ok", content_type="text/plain")

    # ------------------------------------------------------------------ OAuth 2.0 service provider
    @_on_loop
    def add_oauth_app(self, name: str, callback_urls: list[str], *, is_trusted: bool = False,
                      description: str = "", homepage: str = "https://example.com",
                      icon_url: str = "") -> dict:
        """Register an OAuth 2.0 app (what System Console > Integrations > OAuth 2.0 Applications
        does); the returned OAuthApp holds ``id`` (the client id) and ``client_secret``."""
        now = self._now()
        app = {"id": new_id(), "client_secret": new_id(), "name": name, "description": description,
               "icon_url": icon_url, "callback_urls": list(callback_urls), "homepage": homepage,
               "is_trusted": is_trusted, "create_at": now, "update_at": now}
        self.oauth_apps[app["id"]] = app
        return copy.deepcopy(app)

    @_on_loop
    def allow_oauth_app(self, user_id: str, client_id: str) -> None:
        """What the user's "Allow" on the consent page records."""
        self._user(user_id)
        self.oauth_allowed.add((user_id, client_id))

    @_on_loop
    def revoke_token(self, token: str) -> None:
        """Revoke a session, OAuth access token or personal access token: it stops working at once."""
        self.tokens.pop(token, None)
        for rt, grant in list(self._oauth_refresh.items()):
            if grant["access_token"] == token:
                del self._oauth_refresh[rt]

    @staticmethod
    def _found(location: str) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    @staticmethod
    def _web_error(status: int, message: str) -> web.Response:
        """The server renders OAuth page errors as an HTML error page, never as a redirect."""
        from html import escape

        return web.Response(status=status, content_type="text/html",
                            text=f"<!DOCTYPE html><html><body><p>{escape(message)}</p></body></html>")

    @staticmethod
    def _oauth_error(status: int, error_id: str, message: str) -> web.Response:
        body = {"id": error_id, "message": message, "detailed_error": "", "request_id": new_id(),
                "status_code": status, "is_oauth": True}
        return _json_response(body, status)

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        from urllib.parse import urlencode

        q = request.query
        client_id, redirect_uri, state = q.get("client_id", ""), q.get("redirect_uri", ""), q.get("state", "")
        app = self.oauth_apps.get(client_id)
        if not _ID_RE.match(client_id) or app is None:
            return self._web_error(400, "Invalid client id.")
        if not redirect_uri or redirect_uri not in app["callback_urls"]:
            return self._web_error(400, "The redirect URL provided is invalid")
        try:
            user_id = self._session_user(request.cookies.get("MMAUTHTOKEN", ""))
        except ApiError:
            return self._found("/login?" + urlencode({"redirect_to": str(request.rel_url)}))
        if not (app["is_trusted"] or (user_id, client_id) in self.oauth_allowed):
            return self._web_error(403, "The consent page is the webapp's; the double leaves it out: "
                                        "register the app trusted or call allow_oauth_app()")
        sep = "&" if "?" in redirect_uri else "?"
        if q.get("response_type") != "code":
            return self._found(redirect_uri + sep + urlencode(
                {"error": "unsupported_response_type", "state": state}))
        challenge, method = q.get("code_challenge", ""), q.get("code_challenge_method", "")
        if challenge and method != "S256":
            return self._found(redirect_uri + sep + urlencode(
                {"error": "invalid_request", "state": state}))
        code = new_id() + new_id()
        self._oauth_codes[code] = {"client_id": client_id, "user_id": user_id, "redirect_uri": redirect_uri,
                                   "scope": q.get("scope") or "user", "challenge": challenge,
                                   "expires": time.time() + 600}
        return self._found(redirect_uri + sep + urlencode({"code": code, "state": state}))

    async def _oauth_access_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant, client_id = form.get("grant_type", ""), form.get("client_id", "")
        if grant not in ("authorization_code", "refresh_token"):
            return self._oauth_error(400, "api.oauth.get_access_token.bad_grant.app_error",
                                     "invalid_request: Bad grant_type.")
        if not _ID_RE.match(str(client_id)):
            return self._oauth_error(400, "api.oauth.get_access_token.bad_client_id.app_error",
                                     "invalid_request: Bad client_id.")
        if not form.get("client_secret"):
            return self._oauth_error(400, "api.oauth.get_access_token.bad_client_secret.app_error",
                                     "invalid_request: Missing client_secret.")
        app = self.oauth_apps.get(str(client_id))
        if app is None or not secrets.compare_digest(str(form["client_secret"]), app["client_secret"]):
            return self._oauth_error(403, "api.oauth.get_access_token.credentials.app_error",
                                     "invalid_client: The client credentials are invalid.")
        if grant == "refresh_token":
            old = self._oauth_refresh.pop(str(form.get("refresh_token", "")), None)
            if old is None or old["client_id"] != client_id:
                return self._oauth_error(400, "api.oauth.get_access_token.refresh_token.app_error",
                                         "invalid_grant: Invalid refresh token.")
            self.tokens.pop(old["access_token"], None)
            grant_data = old
        else:
            data = self._oauth_codes.pop(str(form.get("code", "")), None)  # single use
            if data is None or data["client_id"] != client_id or data["expires"] < time.time():
                return self._oauth_error(400, "api.oauth.get_access_token.expired_code.app_error",
                                         "invalid_grant: Invalid or expired authorization code.")
            if form.get("redirect_uri", "") != data["redirect_uri"]:
                return self._oauth_error(400, "api.oauth.get_access_token.redirect_uri.app_error",
                                         "invalid_request: Supplied redirect_uri does not match "
                                         "authorization code redirect_uri.")
            if data["challenge"]:
                verifier = str(form.get("code_verifier", ""))
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                want = data["challenge"]
                if not verifier or not secrets.compare_digest(digest.rstrip(b"=").decode(), want):
                    return self._oauth_error(400, "api.oauth.get_access_token.pkce.app_error",
                                             "invalid_grant: Invalid code_verifier.")
            grant_data = data
        if self.users[grant_data["user_id"]]["delete_at"]:
            return self._oauth_error(401, "api.context.session_expired.app_error",
                                     "Invalid or expired session, please login again.")
        access, refresh = new_id(), new_id()
        self.tokens[access] = grant_data["user_id"]
        self._oauth_refresh[refresh] = {"client_id": client_id, "user_id": grant_data["user_id"],
                                        "scope": grant_data["scope"], "access_token": access}
        resp = _json_response({"access_token": access, "token_type": "bearer",
                               "expires_in": 720 * 3600, "scope": grant_data["scope"],
                               "refresh_token": refresh})
        resp.headers["Cache-Control"], resp.headers["Pragma"] = "no-store", "no-cache"
        return resp
