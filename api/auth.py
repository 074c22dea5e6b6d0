"""Authentication as dependencies: who is calling, checked before any route runs."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, Unauthorised

bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

ADMIN_NEEDED = ("this endpoint needs the admin key: send `Authorization: Bearer "
                "<OPENOPS_ADMIN_API_KEY>` (or run with --insecure-local)")


@dataclass(frozen=True)
class AuthConfig:
    """What ``create_app`` was told: ``insecure_local`` without OPENOPS_API_KEY needs no key."""

    insecure_local: bool = False


def _config(request: Request) -> AuthConfig:
    return request.app.state.auth


def require_key(request: Request, creds: Credentials) -> None:
    """The API key or the admin key."""
    settings = request.app.state.runtime.settings
    key = settings.api_key
    if _config(request).insecure_local and not key:
        return
    keys = [k for k in (key, settings.admin_api_key) if k]
    if creds is None or not any(hmac.compare_digest(creds.credentials, k) for k in keys):
        raise Unauthorised()


def require_admin(request: Request, creds: Credentials) -> None:
    settings = request.app.state.runtime.settings
    key = settings.admin_api_key
    if _config(request).insecure_local and not settings.api_key and not key:
        return
    if creds is None or not key or not hmac.compare_digest(creds.credentials, key):
        raise Forbidden(ADMIN_NEEDED)
