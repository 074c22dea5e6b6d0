"""Sign in with Mattermost (OAuth 2.0 authorization code flow, through Authlib's Starlette
client), the session it leaves, and sign-out.

The Mattermost access token is used once, to read ``GET /api/v4/users/me``, and then dropped:
the session cookie holds only who signed in and the CSRF token, signed and time-limited, so a
stolen cookie never becomes a Mattermost credential."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from api.auth import check_csrf, session_person
from api.errors import ServiceUnavailable

router = APIRouter(tags=["sign-in"])
CLIENT = "mattermost"


def register(oauth, settings) -> None:
    """Register Mattermost as the OAuth 2.0 provider: the browser goes to the URL people open
    Mattermost at; the code exchange and users/me go to the server's own address."""
    import ssl

    browser = settings.permalink_base
    server = settings.mattermost_url.rstrip("/")
    client_kwargs: dict = {"token_endpoint_auth_method": "client_secret_post",
                           "code_challenge_method": "S256", "timeout": 10}
    if settings.mattermost_ca_file:
        client_kwargs["verify"] = ssl.create_default_context(cafile=settings.mattermost_ca_file)
    oauth.register(CLIENT, client_id=settings.oauth_client_id,
                   client_secret=settings.oauth_client_secret,
                   authorize_url=browser + "/oauth/authorize",
                   access_token_url=server + "/oauth/access_token",
                   api_base_url=server + "/api/v4/", client_kwargs=client_kwargs)


def _client(request: Request):
    oauth = getattr(request.app.state, "oauth", None)
    return oauth.create_client(CLIENT) if oauth is not None else None


def _not_configured() -> JSONResponse:
    return JSONResponse(status_code=404, content={
        "error": "sign-in with Mattermost is not configured: register an OAuth 2.0 application "
                 "in Mattermost and set OPENOPS_OAUTH_CLIENT_ID, OPENOPS_OAUTH_CLIENT_SECRET "
                 "and OPENOPS_SESSION_SECRET"})


@router.get("/auth/session")
def session_state(request: Request) -> dict:
    """Who is signed in on this browser (the session cookie), with the CSRF token that
    state-changing requests made with the cookie send as `X-CSRF-Token`."""
    person = session_person(request)
    session = request.scope.get("session") or {}
    return {"sign_in": _client(request) is not None,
            "user": {"id": person.id, "username": person.username} if person else None,
            "csrf_token": session.get("csrf") if person else None}


@router.get("/auth/login", include_in_schema=False, name="auth_login")
async def login(request: Request):
    client = _client(request)
    if client is None:
        return _not_configured()
    public = request.app.state.runtime.settings.public_url
    redirect_uri = (public.rstrip("/") + "/auth/callback" if public
                    else str(request.url_for("auth_callback")))
    return await client.authorize_redirect(request, redirect_uri)


@router.get("/auth/callback", include_in_schema=False, name="auth_callback")
async def callback(request: Request):
    from authlib.integrations.base_client import OAuthError
    from httpx import HTTPError

    client = _client(request)
    if client is None:
        return _not_configured()
    try:
        token = await client.authorize_access_token(request)
        if not token.get("access_token"):  # Mattermost answers a refused code with an AppError
            return JSONResponse(status_code=400, content={
                "error": f"sign-in failed: Mattermost refused the code "
                         f"({token.get('message') or token.get('id') or 'no reason given'}); "
                         "start again at /auth/login"})
        r = await client.get("users/me", token=token)
    except OAuthError as exc:
        return JSONResponse(status_code=400, content={
            "error": f"sign-in failed ({exc.error}: {exc.description or 'no description'}); "
                     "start again at /auth/login"})
    except HTTPError as exc:
        raise ServiceUnavailable(f"sign-in failed: Mattermost did not answer ({type(exc).__name__})"
                                 "; try again") from None
    if r.status_code != 200:
        return JSONResponse(status_code=400, content={
            "error": f"sign-in failed: Mattermost refused the new token (HTTP {r.status_code}); "
                     "start again at /auth/login"})
    me = r.json()
    request.session.clear()  # a fresh session: nothing from before sign-in carries over
    request.session.update({"user": {"id": me["id"], "username": me["username"]},
                            "csrf": secrets.token_urlsafe(32), "at": int(time.time())})
    return RedirectResponse("/", status_code=303)


@router.post("/auth/logout")
def logout(request: Request) -> dict:
    """Sign out: the session cookie is emptied (send the `X-CSRF-Token`)."""
    if session_person(request) is not None:
        check_csrf(request)
        request.session.clear()
    return {"signed_out": True}
