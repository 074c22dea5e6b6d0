"""Authentication as dependencies: who is calling, and as whom they may act.

Three kinds of caller (the trust model):

* a **service key** (``OPENOPS_API_KEY``, ``OPENOPS_ADMIN_API_KEY``): an integration that acts
  for anyone it names in ``"user"``; ``--insecure-local`` without a key is one too;
* a **person with a Mattermost token** (``Authorization: Bearer <personal access or session
  token>`` that is not a service key), verified with ``GET /api/v4/users/me`` on the configured
  server and cached :attr:`Settings.token_cache_s` seconds by the token's hash;
* a **person signed in** through "Sign in with Mattermost" (OAuth 2.0), carried by the signed
  session cookie; state-changing requests with the cookie need the CSRF token.

A person acts as themselves only: ``"user"`` omitted or naming them (username or id), anything
else is 403. The acting identity goes on ``request.state.actor`` (``key:api``, ``key:admin``,
``key:local``, ``user:<username>``): :func:`actor_of` is what the services' ``actor=`` takes."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, ServiceUnavailable, Unauthorised

bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

ADMIN_NEEDED = ("this endpoint needs the admin key: send `Authorization: Bearer "
                "<OPENOPS_ADMIN_API_KEY>` (or run with --insecure-local)")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Person:
    """A Mattermost user, as ``GET /api/v4/users/me`` named them."""

    id: str
    username: str


@dataclass(frozen=True)
class Caller:
    actor: str  # key:api | key:admin | key:local | user:<username>
    person: Person | None = None  # set when a person (not a service key) is calling
    via: str = "key"  # key | token | session | local


@dataclass(frozen=True)
class AuthConfig:
    """What ``create_app`` was told: ``insecure_local`` without OPENOPS_API_KEY needs no key."""

    insecure_local: bool = False


class MattermostTokens:
    """Verifies Mattermost tokens with ``GET /api/v4/users/me``; answers (also refusals) are
    kept ``ttl`` seconds under the token's SHA-256, never the token itself."""

    MAX_ENTRIES = 10_000

    def __init__(self, settings):
        self.url = (settings.mattermost_url or "").rstrip("/")
        self.verify: ssl.SSLContext | bool = True  # TLS is always verified
        if settings.mattermost_ca_file:
            self.verify = ssl.create_default_context(cafile=settings.mattermost_ca_file)
        self.ttl = settings.token_cache_s
        self._cache: OrderedDict[str, tuple[float, Person | None]] = OrderedDict()

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def person(self, token: str) -> Person | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            async with httpx.AsyncClient(verify=self.verify, timeout=10) as client:
                r = await client.get(self.url + "/api/v4/users/me",
                                     headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"could not verify the token with Mattermost ({type(exc).__name__}); try again, "
                "or use the service key") from None
        if r.status_code in (401, 403, 404):
            found = None
        elif r.status_code == 200:
            me = r.json()
            found = None if me.get("delete_at") else Person(id=me["id"], username=me["username"])
        else:
            raise ServiceUnavailable(f"could not verify the token with Mattermost (HTTP "
                                     f"{r.status_code}); try again, or use the service key")
        self._cache[key] = (now + self.ttl, found)
        self._cache.move_to_end(key)
        while len(self._cache) > self.MAX_ENTRIES:
            self._cache.popitem(last=False)
        return found


def _settings(request: Request):
    return request.app.state.runtime.settings


def _session(request: Request) -> dict | None:
    """The signed session, when the app has one (``OPENOPS_SESSION_SECRET``)."""
    return request.scope.get("session")


def session_person(request: Request) -> Person | None:
    session = _session(request)
    user = (session or {}).get("user")
    if isinstance(user, dict) and user.get("id") and user.get("username"):
        return Person(id=str(user["id"]), username=str(user["username"]))
    return None


def check_csrf(request: Request) -> None:
    """State-changing requests made with the session cookie: same-site, with the token the
    session holds (double submit: a cross-site page can neither read nor set it)."""
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        raise Forbidden(f"cross-site request refused (Sec-Fetch-Site: {site}): the session "
                        "cookie works only from OpenOps' own pages")
    want = str((_session(request) or {}).get("csrf", ""))
    given = request.headers.get(CSRF_HEADER, "")
    if not want or not hmac.compare_digest(given, want):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header: a request signed in with the "
                        "session cookie must send the csrf_token of GET /auth/session (or use "
                        "`Authorization: Bearer <token>`)")


async def get_caller(request: Request, creds: Credentials) -> Caller:
    """Who is calling: a service key, a person's Mattermost token, or a signed-in session."""
    settings = _settings(request)
    if creds is not None:
        token = creds.credentials
        if settings.admin_api_key and hmac.compare_digest(token, settings.admin_api_key):
            caller = Caller("key:admin")
        elif settings.api_key and hmac.compare_digest(token, settings.api_key):
            caller = Caller("key:api")
        else:
            tokens: MattermostTokens = request.app.state.tokens
            person = await tokens.person(token) if tokens.configured else None
            if person is None:
                raise Unauthorised()
            caller = Caller(f"user:{person.username}", person, via="token")
    elif (person := session_person(request)) is not None:
        check_csrf(request)
        caller = Caller(f"user:{person.username}", person, via="session")
    elif request.app.state.auth.insecure_local and not settings.api_key:
        caller = Caller("key:local", via="local")
    else:
        raise Unauthorised()
    request.state.caller = caller
    request.state.actor = caller.actor
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(request: Request, creds: Credentials) -> None:
    """The admin key (people never: the audit log and the user list are for operators)."""
    settings = _settings(request)
    key = settings.admin_api_key
    if request.app.state.auth.insecure_local and not settings.api_key and not key:
        request.state.actor = "key:local"
        return
    if creds is None or not key or not hmac.compare_digest(creds.credentials, key):
        raise Forbidden(ADMIN_NEEDED)
    request.state.actor = "key:admin"


def actor_of(request: Request) -> str:
    """Who acted, for the audit row: ``key:api``, ``key:admin``, ``key:local`` or
    ``user:<username>``: what the services take as ``actor=``."""
    return getattr(request.state, "actor", "unknown")


def _subject(runtime, person: Person) -> str:
    """The mirror user a person is: the one with their Mattermost id (a live-synced mirror), or
    the bulk-export user of their username (whose id derives from the name), never a live user
    who merely holds the name now. Unknown: their id, which the services answer 404 for."""
    from sqlalchemy import select

    from ingest.ids import user_id as bulk_user_id
    from rag.db import User

    with runtime.db.session() as s:
        if s.get(User, person.id) is not None:
            return person.id
        u = s.scalar(select(User).where(User.username == person.username))
        if u is not None and u.id == bulk_user_id(person.username):
            return u.id
    return person.id


def acting_user(request: Request, caller: Caller, requested: str | None, *,
                where: str = "body") -> str:
    """The user a request acts as. A service key names anyone (``user`` is required); a person
    acts only as themselves: ``user`` omitted or equal to them, else 403."""
    if caller.person is None:
        if not requested:
            raise RequestValidationError([{
                "loc": (where, "user"), "type": "missing",
                "msg": "Field required: a service key acts for the user it names"}])
        return requested
    person = caller.person
    subject = _subject(request.app.state.runtime, person)
    if requested is None:
        return subject
    name = requested.strip()
    if name.removeprefix("@") == person.username or name in (person.id, subject):
        return subject
    raise Forbidden(f"signed in as @{person.username}, a request may act only as "
                    f"@{person.username}: omit \"user\" or set it to \"{person.username}\" "
                    "(acting for others takes the service key, OPENOPS_API_KEY)")


async def acting_reader(request: Request, caller: Caller, requested: str | None, *,
                        where: str = "body") -> str:
    """:func:`acting_user`, whose permissions are then re-read from Mattermost (teams, channel
    memberships, roles; at most once per OPENOPS_PERMISSION_REFRESH_S): a removal applies to the
    next question through the API too, even in channels the bot is not in."""
    user = acting_user(request, caller, requested, where=where)
    await request.app.state.live.refresh_reader(user)
    return user


def acting_reader_blocking(request: Request, caller: Caller, requested: str | None, *,
                           where: str = "body") -> str:
    """:func:`acting_reader` for the synchronous routes (they run in a worker thread)."""
    user = acting_user(request, caller, requested, where=where)
    request.app.state.live.refresh_reader_blocking(user)
    return user
