"""The Mattermost double as an OAuth 2.0 provider, driven by a real OAuth client (Authlib's
httpx client) over HTTPS: what "Use OAuth2.0 with Mattermost" and oauth.yaml describe, and the
refusals a careful provider makes (unregistered redirect URI, wrong secret, a code used twice or
by another client, a PKCE verifier that does not match, no signed-in browser)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.doubles.mattermost import MattermostDouble

CALLBACK = "https://openops.example.com/auth/callback"
OAUTH_APP_KEYS = {"id", "client_secret", "name", "description", "icon_url", "callback_urls",
                  "homepage", "is_trusted", "create_at", "update_at"}  # definitions.yaml OAuthApp


@pytest.fixture
def mm() -> Iterator[MattermostDouble]:
    with MattermostDouble() as double:
        yield double
        assert not double.server_errors, double.server_errors[0]


def _client(mm, app, **kw) -> OAuth2Client:
    return OAuth2Client(app["id"], app["client_secret"], redirect_uri=CALLBACK,
                        token_endpoint_auth_method="client_secret_post", verify=mm.ca_file, **kw)


def _authorize(mm, url: str, user_token: str | None) -> httpx.Response:
    cookies = {"MMAUTHTOKEN": user_token} if user_token else None
    return httpx.get(url, cookies=cookies, verify=mm.ca_file)


def test_the_code_flow_with_pkce_ends_in_a_token_for_users_me(mm):
    alice = mm.add_user("alice")
    app = mm.add_oauth_app("OpenOps", [CALLBACK], is_trusted=True)
    assert set(app) == OAUTH_APP_KEYS
    client = _client(mm, app, code_challenge_method="S256")
    verifier = "v" * 64
    url, state = client.create_authorization_url(mm.url + "/oauth/authorize",
                                                 code_verifier=verifier)
    r = _authorize(mm, url, mm.token_for(alice["id"]))
    assert r.status_code == 302
    back = r.headers["location"]
    assert back.startswith(CALLBACK + "?")
    q = parse_qs(urlsplit(back).query)
    assert q["state"] == [state]
    token = client.fetch_token(mm.url + "/oauth/access_token", authorization_response=back,
                               code_verifier=verifier)
    assert token["token_type"] == "bearer" and token["scope"] == "user"
    assert token["expires_in"] > 0 and token["refresh_token"]
    me = httpx.get(mm.url + "/api/v4/users/me", verify=mm.ca_file,
                   headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == alice["id"]
    # the code was single-use (the error is an AppError, as the server's; no RFC 6749 `error`)
    again = httpx.post(mm.url + "/oauth/access_token", verify=mm.ca_file, data={
        "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": CALLBACK,
        "client_id": app["id"], "client_secret": app["client_secret"], "code_verifier": verifier})
    assert again.status_code == 400
    assert again.json()["id"] == "api.oauth.get_access_token.expired_code.app_error"
    # a refresh gives a new token and ends the old one
    new = client.refresh_token(mm.url + "/oauth/access_token",
                               refresh_token=token["refresh_token"])
    assert new["access_token"] != token["access_token"]
    old = httpx.get(mm.url + "/api/v4/users/me", verify=mm.ca_file,
                    headers={"Authorization": f"Bearer {token['access_token']}"})
    assert old.status_code == 401
    mm.revoke_token(new["access_token"])
    gone = httpx.get(mm.url + "/api/v4/users/me", verify=mm.ca_file,
                     headers={"Authorization": f"Bearer {new['access_token']}"})
    assert gone.status_code == 401


def test_the_provider_refuses_what_it_should(mm):
    alice = mm.add_user("alice")
    session = mm.token_for(alice["id"])
    app = mm.add_oauth_app("OpenOps", [CALLBACK], is_trusted=True)
    other = mm.add_oauth_app("Other", ["https://other.example.com/cb"], is_trusted=True)
    client = _client(mm, app, code_challenge_method="S256")

    # an unregistered redirect URI: an error page, never a redirect to it
    bad = _client(mm, app)
    bad.redirect_uri = "https://evil.example/cb"
    url, _ = bad.create_authorization_url(mm.url + "/oauth/authorize")
    r = _authorize(mm, url, session)
    assert r.status_code == 400 and "location" not in r.headers
    # no signed-in browser: to the login page, coming back here afterwards
    url, _ = client.create_authorization_url(mm.url + "/oauth/authorize", code_verifier="w" * 64)
    r = _authorize(mm, url, None)
    assert r.status_code == 302 and r.headers["location"].startswith("/login?redirect_to=")
    # an untrusted app needs the user's consent first
    untrusted = mm.add_oauth_app("Untrusted", [CALLBACK])
    u_client = _client(mm, untrusted)
    u_url, _ = u_client.create_authorization_url(mm.url + "/oauth/authorize")
    assert _authorize(mm, u_url, session).status_code == 403
    mm.allow_oauth_app(alice["id"], untrusted["id"])
    assert _authorize(mm, u_url, session).status_code == 302

    back = _authorize(mm, url, session).headers["location"]
    code = parse_qs(urlsplit(back).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "client_id": app["id"], "client_secret": app["client_secret"],
            "code_verifier": "w" * 64}

    def exchange(**changes) -> httpx.Response:
        return httpx.post(mm.url + "/oauth/access_token", data={**form, **changes},
                          verify=mm.ca_file)

    r = exchange(client_secret="wrong")
    assert r.status_code == 403 and r.json()["is_oauth"] is True
    r = exchange(client_id=other["id"], client_secret=other["client_secret"])
    assert r.status_code == 400  # another client's code (and it is now spent)
    back = _authorize(mm, url, session).headers["location"]
    form["code"] = parse_qs(urlsplit(back).query)["code"][0]
    assert exchange(code_verifier="x" * 64).status_code == 400
    back = _authorize(mm, url, session).headers["location"]
    form["code"] = parse_qs(urlsplit(back).query)["code"][0]
    assert exchange(redirect_uri="https://openops.example.com/other").status_code == 400
    assert exchange(grant_type="client_credentials").status_code == 400
    back = _authorize(mm, url, session).headers["location"]
    form["code"] = parse_qs(urlsplit(back).query)["code"][0]
    r = exchange()
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
