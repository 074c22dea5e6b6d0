"""People sign in as themselves: Mattermost tokens and "Sign in with Mattermost" (OAuth 2.0)
against the Mattermost double, over real HTTP (uvicorn, httpx), on the permission workspace.

A person acts only as themselves; the service keys act for anyone; the session cookie is signed,
HttpOnly, SameSite=Lax, Secure over TLS, and needs the CSRF token to change anything."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.conftest import serve_app
from tests.doubles.mattermost import MattermostDouble
from tests.integration.test_permissions import FACTS, workspace

KEY = "service-key-0123456789"
ADMIN = "admin-key-0123456789"
SECRET = secrets.token_urlsafe(32)
QUESTION = "When does the staging database password rotate?"


@pytest.fixture(scope="module")
def mm():
    with MattermostDouble() as double:
        team = double.add_team("acme")
        for name in ("alice.a", "bob.b"):
            u = double.add_user(name)
            double.add_to_team(team["id"], u["id"])
        yield double


def _user(mm, name: str) -> dict:
    return next(u for u in mm.users.values() if u["username"] == name)


@pytest.fixture
def make_server(make_runtime, tmp_path, mm):
    """Serve OpenOps over the permission workspace, pointed at the double."""
    import contextlib

    stack = contextlib.ExitStack()
    path = workspace().write(tmp_path / "ws.jsonl")

    def start(*, insecure_local: bool = False, oauth: dict | None = None, **settings):
        overrides = dict(api_key=KEY, admin_api_key=ADMIN, mattermost_url=mm.url,
                         mattermost_ca_file=mm.ca_file, session_secret=SECRET)
        if oauth:
            overrides.update(oauth_client_id=oauth["id"], oauth_client_secret=oauth["client_secret"])
        overrides.update(settings)
        rt = make_runtime(**overrides)
        ingest_path(rt, path)
        start.runtime = rt
        return stack.enter_context(serve_app(create_app(rt, insecure_local=insecure_local)))

    yield start
    stack.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _texts(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    return " ".join(x["text"] for x in r.json()["results"])


# ---- personal access / session tokens ------------------------------------------------------
def test_a_mattermost_token_acts_as_its_person_only(make_server, mm):
    base = make_server()
    alice = mm.token_for(_user(mm, "alice.a")["id"])
    bob = mm.token_for(_user(mm, "bob.b")["id"])
    q = {"query": "database password rotation", "k": 8}
    # no "user": the token's person; alice may read eng-private, bob may not
    assert FACTS["eng-private"] in _texts(httpx.post(base + "/v1/search", json=q,
                                                     headers=bearer(alice)))
    assert FACTS["eng-private"] not in _texts(httpx.post(base + "/v1/search", json=q,
                                                         headers=bearer(bob)))
    # naming oneself (by username, @username or Mattermost id) is fine
    for me in ("alice.a", "@alice.a", _user(mm, "alice.a")["id"]):
        assert FACTS["eng-private"] in _texts(httpx.post(
            base + "/v1/search", json={**q, "user": me}, headers=bearer(alice)))
    # bob's token may not read as alice, on any route that takes a user
    for path, body in [("/v1/search", {**q, "user": "alice.a"}),
                       ("/v1/ask", {"user": "alice.a", "question": QUESTION}),
                       ("/v1/summaries", {"user": "alice.a", "kind": "channel",
                                          "channel_id": "eng-private", "days": 3650}),
                       ("/v1/feedback", {"user": "alice.a", "answer_id": "x", "rating": "up"})]:
        r = httpx.post(base + path, json=body, headers=bearer(bob), timeout=60)
        assert r.status_code == 403, (path, r.text)
        assert "may act only as @bob.b" in r.json()["error"], r.json()
    r = httpx.get(base + "/v1/scope", params={"user": "alice.a"}, headers=bearer(bob))
    assert r.status_code == 403 and "@bob.b" in r.json()["error"]
    scope = httpx.get(base + "/v1/scope", headers=bearer(bob)).json()["channels"]
    assert "eng-private" not in {c["name"] for c in scope}
    # a person's token is no admin key
    r = httpx.get(base + "/v1/audit", headers=bearer(alice))
    assert r.status_code == 403 and "OPENOPS_ADMIN_API_KEY" in r.json()["error"]


def test_service_keys_act_for_anyone_they_name(make_server):
    base = make_server()
    q = {"query": "database password rotation", "k": 8}
    for key in (KEY, ADMIN):
        assert FACTS["eng-private"] in _texts(httpx.post(
            base + "/v1/search", json={**q, "user": "alice.a"}, headers=bearer(key)))
    r = httpx.post(base + "/v1/search", json=q, headers=bearer(KEY))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "user", r.json()
    assert "service key" in r.json()["error"]


def test_tokens_are_cached_briefly_then_revocation_holds(make_server, mm):
    carol = mm.add_user(f"carol{secrets.token_hex(3)}")
    token = mm.token_for(carol["id"])
    base = make_server(token_cache_s=3600)
    q = {"query": "lasagna", "k": 1}
    me_calls = lambda: sum(1 for r in mm.requests if r.path == "/api/v4/users/me")  # noqa: E731
    before = me_calls()
    for _ in range(3):  # carol is not in the mirror: a 404 naming her, after verifying her
        r = httpx.post(base + "/v1/search", json=q, headers=bearer(token))
        assert r.status_code == 404 and "unknown user" in r.json()["error"], r.text
    assert me_calls() - before == 1  # verified once, then from the cache
    mm.revoke_token(token)
    assert httpx.post(base + "/v1/search", json=q, headers=bearer(token)).status_code == 404

    fresh = make_server(token_cache_s=0)  # no cache: revocation is immediate
    alice = mm.token_for(_user(mm, "alice.a")["id"])
    assert httpx.post(fresh + "/v1/search", json=q, headers=bearer(alice)).status_code == 200
    mm.revoke_token(alice)
    r = httpx.post(fresh + "/v1/search", json=q, headers=bearer(alice))
    assert r.status_code == 401 and "error" in r.json()
    mm.token_for(_user(mm, "alice.a")["id"])  # a new token for the other tests


def test_a_person_is_never_a_mirror_user_who_merely_holds_their_name(make_server, mm):
    """A live-synced mirror user keeps their Mattermost id; someone else who now holds the
    username in Mattermost (renamed accounts) does not become them."""
    from rag.db import User

    frank = mm.add_user(f"frank{secrets.token_hex(3)}")
    base = make_server()
    with make_server.runtime.db.session() as s:
        s.add(User(id="x" * 26, username=frank["username"]))  # another account, synced earlier
        s.commit()
    r = httpx.post(base + "/v1/search", json={"query": "lasagna"},
                   headers=bearer(mm.token_for(frank["id"])))
    assert r.status_code == 404 and frank["id"] in r.json()["error"], r.text


def test_a_wrong_token_or_a_deactivated_person_is_401(make_server, mm):
    base = make_server(token_cache_s=0)
    r = httpx.post(base + "/v1/search", json={"query": "x"}, headers=bearer("not-a-token"))
    assert r.status_code == 401 and "OPENOPS_API_KEY" in r.json()["error"]
    gone = mm.add_user(f"gone{secrets.token_hex(3)}")
    token = mm.token_for(gone["id"])
    assert httpx.post(base + "/v1/search", json={"query": "x"},
                      headers=bearer(token)).status_code == 404  # verified, not in the mirror
    mm.deactivate_user(gone["id"])
    assert httpx.post(base + "/v1/search", json={"query": "x"},
                      headers=bearer(token)).status_code == 401


# ---- Sign in with Mattermost -----------------------------------------------------------------
@pytest.fixture
def signed_in_server(make_server, mm):
    """A server with sign-in configured; the app's callback is registered once the port is
    known (the double checks redirect_uri against it exactly)."""
    app = mm.add_oauth_app("OpenOps", [], is_trusted=True)
    base = make_server(oauth=app)
    mm.oauth_apps[app["id"]]["callback_urls"] = [base + "/auth/callback"]
    return base


def sign_in(mm, base: str, username: str) -> httpx.Client:
    """The browser's part of the flow, step by step, with httpx and the double's cookie."""
    client = httpx.Client(base_url=base, timeout=60)
    r = client.get("/auth/login")
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(mm.url + "/oauth/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["response_type"] == ["code"] and query["state"][0]
    assert query["redirect_uri"] == [base + "/auth/callback"]
    assert query["code_challenge_method"] == ["S256"]
    token = mm.token_for(_user(mm, username)["id"])
    r = httpx.get(authorize, cookies={"MMAUTHTOKEN": token}, verify=mm.ssl_context())
    assert r.status_code == 302, r.text
    back = r.headers["location"]
    assert back.startswith(base + "/auth/callback?") and "code=" in back
    r = client.get(back.removeprefix(base))
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client


def test_sign_in_with_mattermost_then_act_as_oneself(signed_in_server, mm):
    base = signed_in_server
    anon = httpx.get(base + "/auth/session").json()
    assert anon == {"sign_in": True, "user": None, "csrf_token": None}
    client = sign_in(mm, base, "alice.a")
    cookie = next(c for c in client.cookies.jar if c.name == "openops_session")
    assert not cookie.secure  # plain HTTP here; see the TLS test below
    state = client.get("/auth/session").json()
    assert state["user"]["username"] == "alice.a" and state["user"]["id"] == _user(mm, "alice.a")["id"]
    csrf = {"X-CSRF-Token": state["csrf_token"]}
    q = {"query": "database password rotation", "k": 8}

    # the cookie without the CSRF token changes nothing; with it, alice acts as herself
    r = client.post("/v1/search", json=q)
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]
    r = client.post("/v1/search", json=q, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert FACTS["eng-private"] in _texts(client.post("/v1/search", json=q, headers=csrf))
    r = client.post("/v1/ask", json={"question": QUESTION}, headers=csrf)
    assert r.status_code == 200 and "Tuesday" in r.json()["answer"], r.text
    r = client.post("/v1/search", json={**q, "user": "bob.b"}, headers=csrf)
    assert r.status_code == 403 and "may act only as @alice.a" in r.json()["error"]
    # a cross-site request carrying the cookie is refused even with the token
    r = client.post("/v1/search", json=q, headers={**csrf, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    # reads need no token
    assert client.get("/v1/scope").status_code == 200

    # sign-out needs the token too, then the cookie is worth nothing
    assert client.post("/auth/logout").status_code == 403
    assert client.post("/auth/logout", headers=csrf).status_code == 200
    assert client.get("/auth/session").json()["user"] is None
    r = client.post("/v1/search", json=q, headers=csrf)
    assert r.status_code == 401


def test_the_session_cookie_flags(signed_in_server, make_server, mm):
    client = httpx.Client(base_url=signed_in_server)
    set_cookie = client.get("/auth/login").headers["set-cookie"].lower()
    assert set_cookie.startswith("openops_session=")
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert "secure" not in set_cookie  # plain HTTP
    # over TLS (uvicorn takes the scheme from a trusted proxy's X-Forwarded-Proto) it is Secure
    tls = client.get("/auth/login", headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in tls.headers["set-cookie"].lower()
    # and always with OPENOPS_SESSION_COOKIE_SECURE=true
    app = mm.add_oauth_app("OpenOps", ["http://127.0.0.1/auth/callback"], is_trusted=True)
    forced = make_server(oauth=app, session_cookie_secure=True)
    assert "; secure" in httpx.get(forced + "/auth/login").headers["set-cookie"].lower()


def test_a_forged_or_replayed_callback_signs_nobody_in(signed_in_server, mm):
    base = signed_in_server
    client = httpx.Client(base_url=base, timeout=30)
    authorize = client.get("/auth/login").headers["location"]
    token = mm.token_for(_user(mm, "alice.a")["id"])
    back = httpx.get(authorize, cookies={"MMAUTHTOKEN": token},
                     verify=mm.ssl_context()).headers["location"]
    # another browser (no session holding the state) presents alice's code: refused
    r = httpx.get(back)
    assert r.status_code == 400 and "sign-in failed" in r.json()["error"]
    # a state that was never issued: refused
    code = parse_qs(urlsplit(back).query)["code"][0]
    r = client.get("/auth/callback", params={"code": code, "state": "forged"})
    assert r.status_code == 400 and "error" in r.json()
    assert client.get("/auth/session").json()["user"] is None


def test_a_refused_code_exchange_signs_nobody_in(make_server, mm):
    app = mm.add_oauth_app("OpenOps", [], is_trusted=True)
    base = make_server(oauth={**app, "client_secret": "not-the-secret"})  # misconfigured
    mm.oauth_apps[app["id"]]["callback_urls"] = [base + "/auth/callback"]
    client = httpx.Client(base_url=base, timeout=30)
    authorize = client.get("/auth/login").headers["location"]
    back = httpx.get(authorize, cookies={"MMAUTHTOKEN": mm.token_for(_user(mm, "alice.a")["id"])},
                     verify=mm.ssl_context()).headers["location"]
    r = client.get(back.removeprefix(base))
    assert r.status_code == 400 and "Mattermost refused the code" in r.json()["error"], r.text
    assert client.get("/auth/session").json()["user"] is None


def test_sign_in_is_404_when_not_configured(make_server):
    base = make_server()
    r = httpx.get(base + "/auth/login")
    assert r.status_code == 404 and "OPENOPS_OAUTH_CLIENT_ID" in r.json()["error"]
    assert httpx.get(base + "/auth/session").json()["sign_in"] is False


def test_sign_in_settings_are_checked_at_start(make_runtime, mm):
    rt = make_runtime(oauth_client_id="x" * 26, oauth_client_secret="y", mattermost_url=mm.url)
    with pytest.raises(ValueError, match="OPENOPS_SESSION_SECRET"):
        create_app(rt)


# ---- --insecure-local and DNS rebinding --------------------------------------------------------
def test_insecure_local_answers_only_loopback_host_names(make_server):
    base = make_server(insecure_local=True, api_key=None, admin_api_key=None)
    port = urlsplit(base).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        r = httpx.get(base + "/healthz", headers={"Host": host})
        assert r.status_code == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "localhost",
                 f"127.0.0.1.evil.example:{port}"):
        r = httpx.post(base + "/v1/search", json={"user": "alice.a", "query": "x"},
                       headers={"Host": host})
        assert r.status_code == 421, host
        assert "DNS rebinding" in r.json()["error"]
