"""The Mattermost double driven by real clients: httpx over HTTPS, `websockets` over WSS, both verifying
the double's CA; a real aiohttp server for slash commands; mattermostautodriver when it is installed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import aiohttp
import httpx
import pytest
import websockets
from aiohttp import web

from tests.doubles.mattermost import MattermostDouble

ERROR_KEYS = {"id", "message", "detailed_error", "request_id", "status_code"}
POST_KEYS = {"id", "create_at", "update_at", "edit_at", "delete_at", "is_pinned", "user_id", "channel_id",
             "root_id", "original_id", "message", "type", "props", "hashtags", "file_ids", "pending_post_id",
             "metadata"}
MEMBER_KEYS = {"user_id", "channel_id", "roles", "last_viewed_at", "msg_count", "mention_count"}
POSTED_KEYS = {"channel_display_name", "channel_name", "channel_type", "post", "sender_name", "team_id"}


@pytest.fixture
def mm() -> Iterator[MattermostDouble]:
    double = MattermostDouble()
    double.start()
    try:
        yield double
    finally:
        double.stop()
    assert not double.server_errors, double.server_errors[0]


@pytest.fixture
def w(mm: MattermostDouble) -> SimpleNamespace:
    """acme team; openops bot (system admin); alice, bob, carol; public town-square with everyone,
    private "secret" with alice and the bot only."""
    team = mm.add_team("acme", "ACME")
    bot, token = mm.add_bot("openops", display_name="OpenOps", roles="system_user system_admin")
    alice, bob, carol = (mm.add_user(n, first_name=n.title()) for n in ("alice", "bob", "carol"))
    for user in (bot, alice, bob, carol):
        mm.add_to_team(team["id"], user["id"])
    town = mm.add_channel(team["id"], "town-square", display_name="Town Square", creator_id=alice["id"])
    secret = mm.add_channel(team["id"], "secret", type="P", display_name="Secret", creator_id=alice["id"])
    for user in (bot, bob, carol):
        mm.add_member(town["id"], user["id"])
    mm.add_member(secret["id"], bot["id"])
    return SimpleNamespace(mm=mm, team=team, bot=bot, token=token, alice=alice, bob=bob, carol=carol,
                           town=town, secret=secret)


def api(mm: MattermostDouble, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=mm.url + "/api/v4", headers=headers, timeout=10,
                        verify=ssl.create_default_context(cafile=mm.ca_file))


def as_user(w: SimpleNamespace, user: dict) -> httpx.Client:
    return api(w.mm, w.mm.token_for(user["id"]))


async def ws_connect(mm: MattermostDouble, token: str, challenge: bool = True) -> websockets.ClientConnection:
    url = mm.url.replace("https://", "wss://") + "/api/v4/websocket"
    ctx = ssl.create_default_context(cafile=mm.ca_file)
    if challenge:
        ws = await websockets.connect(url, ssl=ctx)
        await ws.send(json.dumps({"seq": 1, "action": "authentication_challenge", "data": {"token": token}}))
    else:
        ws = await websockets.connect(url, ssl=ctx, additional_headers={"Authorization": f"Bearer {token}"})
    hello = json.loads(await ws.recv())
    assert hello["event"] == "hello" and hello["seq"] == 0 and hello["data"]["server_version"]
    assert set(hello["broadcast"]) >= {"omit_users", "user_id", "channel_id", "team_id"}
    if challenge:
        assert json.loads(await ws.recv()) == {"status": "OK", "seq_reply": 1}
    return ws


async def next_event(ws: websockets.ClientConnection, timeout: float = 5.0) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if "event" in msg:
            return msg


def later(fn, *args, **kwargs):
    """Run a blocking test-side call off the client's event loop."""
    return asyncio.to_thread(fn, *args, **kwargs)


# --------------------------------------------------------------------------- auth and permissions
def test_auth_is_required_and_errors_have_mattermost_shape(w):
    with api(w.mm) as anon:
        ping = anon.get("/system/ping")
        assert ping.json()["status"] == "OK" and ping.headers["Content-Type"] == "application/json"
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = anon.get("/users/me", headers=headers)
            assert r.status_code == 401
            body = r.json()
            assert set(body) >= ERROR_KEYS and body["id"] == "api.context.session_expired.app_error"
            assert body["status_code"] == 401 and body["detailed_error"] == "" and body["request_id"]
        missing = anon.get("/no/such/route", headers={"Authorization": f"Bearer {w.token}"})
        assert missing.status_code == 404 and set(missing.json()) >= ERROR_KEYS
        anon.cookies.set("MMAUTHTOKEN", w.token)
        assert anon.get("/users/me").json()["id"] == w.bot["id"]
    with api(w.mm, w.token) as bot:
        me = bot.get("/users/me").json()
        assert me["is_bot"] is True and me["username"] == "openops"
        assert {"id", "username", "first_name", "last_name", "nickname", "email", "position", "roles",
                "delete_at", "is_bot", "update_at", "create_at"} <= set(me)
        assert bot.get(f"/bots/{w.bot['id']}").json()["display_name"] == "OpenOps"
    with as_user(w, w.carol) as carol:
        w.mm.deactivate_user(w.carol["id"])
        assert carol.get("/users/me").status_code == 401


def test_permissions_private_channel_forbidden_unknown_ids_not_found(w):
    with as_user(w, w.bob) as bob, api(w.mm, w.token) as bot:
        for method, path, body in [("GET", f"/channels/{w.secret['id']}", None),
                                   ("GET", f"/channels/{w.secret['id']}/posts", None),
                                   ("POST", "/posts", {"channel_id": w.secret["id"], "message": "hi"}),
                                   ("GET", f"/teams/{w.team['id']}/channels/private", None)]:
            r = bob.request(method, path, json=body)
            assert r.status_code == 403, path
            assert set(r.json()) >= ERROR_KEYS and r.json()["id"] == "api.context.permissions.app_error"
        post = w.mm.post(w.alice["id"], w.secret["id"], "classified")
        assert bob.get(f"/posts/{post['id']}").status_code == 403
        assert bot.get(f"/posts/{post['id']}").json()["message"] == "classified"
        assert bob.get("/channels/" + "x" * 26).status_code == 404
        assert bob.get("/posts/" + "x" * 26).json()["id"] == "app.post.get.app_error"
        # a public channel is readable by a team member who is not in it
        lounge = w.mm.add_channel(w.team["id"], "lounge", creator_id=w.alice["id"])
        assert bob.get(f"/channels/{lounge['id']}").json()["type"] == "O"
        # the admin bot sees private channels; bob's own channels include DMs
        assert [c["name"] for c in bot.get(f"/teams/{w.team['id']}/channels/private").json()] == ["secret"]
        dm = w.mm.direct_channel(w.bob["id"], w.alice["id"])
        names = {c["name"] for c in bob.get(f"/users/me/teams/{w.team['id']}/channels").json()}
        assert names == {"town-square", dm["name"]}
        assert bob.get(f"/users/{w.alice['id']}/channels").status_code == 403


def test_users_teams_and_members_endpoints_page(w):
    with api(w.mm, w.token) as bot:
        first = bot.get("/users", params={"page": 0, "per_page": 2}).json()
        second = bot.get("/users", params={"page": 1, "per_page": 2}).json()
        assert [u["username"] for u in first + second] == ["alice", "bob", "carol", "openops"]
        in_secret = bot.get("/users", params={"in_channel": w.secret["id"]}).json()
        assert {u["username"] for u in in_secret} == {"alice", "openops"}
        assert bot.get("/users/username/alice").json()["id"] == w.alice["id"]
        ids = bot.post("/users/ids", json=[w.alice["id"], w.bob["id"], "missing"]).json()
        assert {u["username"] for u in ids} == {"alice", "bob"}
        assert [t["name"] for t in bot.get("/users/me/teams").json()] == ["acme"]
        assert bot.get("/users/me/teams/members").json()[0]["team_id"] == w.team["id"]
        assert len(bot.get(f"/teams/{w.team['id']}/members", params={"per_page": 3}).json()) == 3
        assert [c["name"] for c in bot.get(f"/teams/{w.team['id']}/channels").json()] == ["town-square"]
        members = bot.get(f"/channels/{w.town['id']}/members").json()
        assert {m["user_id"] for m in members} == {u["id"] for u in (w.alice, w.bob, w.carol, w.bot)}
        assert MEMBER_KEYS <= set(members[0])
        assert bot.get(f"/channels/{w.secret['id']}/members/{w.bob['id']}").status_code == 404
        w.mm.archive_channel(w.secret["id"])
        assert [c["name"] for c in bot.get(f"/teams/{w.team['id']}/channels/deleted").json()] == ["secret"]
        assert bot.get(f"/channels/{w.secret['id']}").json()["delete_at"] > 0
        dm = bot.post("/channels/direct", json=[w.bot["id"], w.alice["id"]])
        assert dm.status_code == 201 and dm.json()["type"] == "D"
        gm = bot.post("/channels/group", json=[w.alice["id"], w.bob["id"]]).json()
        assert gm["type"] == "G" and gm["display_name"] == "alice, bob, openops"


# --------------------------------------------------------------------------- posts and their events
def test_create_patch_delete_post_and_their_events(w):
    async def scenario() -> None:
        ws = await ws_connect(w.mm, w.mm.token_for(w.alice["id"]), challenge=False)
        with api(w.mm, w.token) as bot:
            r = await later(bot.post, "/posts", json={"channel_id": w.town["id"], "message": "hello @alice",
                                                      "props": {"k": "v"}, "pending_post_id": "p1"})
            assert r.status_code == 201
            post = r.json()
            assert POST_KEYS <= set(post) and post["props"] == {"k": "v", "from_bot": "true"}
            again = await later(bot.post, "/posts", json={"channel_id": w.town["id"], "message": "hello",
                                                          "pending_post_id": "p1"})
            assert again.json()["id"] == post["id"]  # a retried create is de-duplicated
            assert ("POST", "/api/v4/posts", {"channel_id": w.town["id"], "message": "hello",
                                              "pending_post_id": "p1"}) in w.mm.requests

            ev = await next_event(ws)
            assert ev["event"] == "posted" and ev["seq"] == 1 and POSTED_KEYS <= set(ev["data"])
            assert ev["broadcast"]["channel_id"] == w.town["id"]
            assert isinstance(ev["data"]["post"], str) and json.loads(ev["data"]["post"])["id"] == post["id"]
            assert ev["data"]["sender_name"] == "@openops" and ev["data"]["channel_type"] == "O"
            assert json.loads(ev["data"]["mentions"]) == [w.alice["id"]]

            r = await later(bot.put, f"/posts/{post['id']}/patch", json={"message": "hello again"})
            edited = r.json()
            assert edited["edit_at"] > 0 and edited["update_at"] >= edited["edit_at"]
            ev = await next_event(ws)
            assert ev["event"] == "post_edited" and ev["seq"] == 2
            assert json.loads(ev["data"]["post"])["message"] == "hello again"

            assert (await later(bot.delete, f"/posts/{post['id']}")).json() == {"status": "OK"}
            ev = await next_event(ws)
            assert ev["event"] == "post_deleted" and json.loads(ev["data"]["post"])["delete_at"] > 0
            assert (await later(bot.get, f"/posts/{post['id']}")).status_code == 404
            with as_user(w, w.alice) as alice:  # alice cannot edit the bot's post
                mine = await later(w.mm.post, w.bot["id"], w.town["id"], "bot says")
                r = await later(alice.put, f"/posts/{mine['id']}/patch", json={"message": "x"})
                assert r.status_code == 403
        await ws.close()

    asyncio.run(scenario())


def test_message_length_limit(w):
    with api(w.mm, w.token) as bot:
        ok = bot.post("/posts", json={"channel_id": w.town["id"], "message": "é" * 16383})
        assert ok.status_code == 201
        r = bot.post("/posts", json={"channel_id": w.town["id"], "message": "x" * 16384})
        assert r.status_code == 400 and r.json()["id"] == "model.post.is_valid.message_length.app_error"
        assert set(r.json()) >= ERROR_KEYS


def test_channel_posts_paging_since_and_thread(w):
    mm, cid = w.mm, w.town["id"]
    posts = [mm.post(w.alice["id"], cid, f"m{i}") for i in range(5)]
    reply = mm.post(w.bob["id"], cid, "r1", root_id=posts[1]["id"])
    with api(mm, w.token) as bot:
        page0 = bot.get(f"/channels/{cid}/posts", params={"page": 0, "per_page": 2}).json()
        assert set(page0) == {"order", "posts", "next_post_id", "prev_post_id",
                              "first_inaccessible_post_time"}
        assert page0["order"] == [reply["id"], posts[4]["id"]]  # newest first
        assert posts[1]["id"] in page0["posts"]  # the reply's root comes along, outside `order`
        assert page0["next_post_id"] == "" and page0["prev_post_id"] == posts[3]["id"]
        page1 = bot.get(f"/channels/{cid}/posts", params={"page": 1, "per_page": 2}).json()
        assert page1["order"] == [posts[3]["id"], posts[2]["id"]]
        before = bot.get(f"/channels/{cid}/posts", params={"before": posts[2]["id"], "per_page": 10}).json()
        assert before["order"] == [posts[1]["id"], posts[0]["id"]]
        assert before["next_post_id"] == posts[2]["id"] and before["prev_post_id"] == ""
        assert reply["id"] in before["posts"]  # threads of the page are included too
        after = bot.get(f"/channels/{cid}/posts", params={"after": posts[3]["id"], "per_page": 10}).json()
        assert after["order"] == [reply["id"], posts[4]["id"]] and after["prev_post_id"] == posts[3]["id"]

        mark = mm.get_post(reply["id"])["create_at"]
        mm.edit_post(posts[2]["id"], "m2 edited")
        mm.delete_post(posts[4]["id"])
        late = mm.post(w.carol["id"], cid, "late")
        since = bot.get(f"/channels/{cid}/posts", params={"since": mark}).json()
        live = [i for i in since["order"] if since["posts"][i]["original_id"] == ""]
        assert live == [late["id"], posts[4]["id"], posts[2]["id"]]
        assert since["posts"][posts[4]["id"]]["delete_at"] > 0  # deletions are reported
        assert since["posts"][posts[2]["id"]]["edit_at"] > 0
        history = [p for p in since["posts"].values() if p["original_id"] == posts[2]["id"]]
        assert len(history) == 1 and history[0]["message"] == "m2" and history[0]["delete_at"] > 0
        assert since["next_post_id"] == since["prev_post_id"] == ""
        assert "has_next" not in since

        thread = bot.get(f"/posts/{reply['id']}/thread").json()
        assert thread["order"] == [reply["id"], posts[1]["id"]] and thread["has_next"] is False
        mm.post(w.alice["id"], cid, "r2", root_id=posts[1]["id"])
        params = {"perPage": 1, "direction": "down", "fromCreateAt": posts[1]["create_at"]}
        paged = bot.get(f"/posts/{posts[1]['id']}/thread", params=params).json()
        assert paged["order"] == [posts[1]["id"], reply["id"]] and paged["has_next"] is True
        assert bot.get(f"/posts/{posts[4]['id']}/thread").status_code == 404
        assert bot.get(f"/channels/{cid}/posts", params={"before": "bogus"}).status_code == 400


def test_since_returns_at_most_1000_changes_the_newest_by_create_time(w):
    """posts.yaml: "all posts modified since that time, ordered by their create time limited
    till 1000"; no paging, so what is left out is the client's to recover."""
    mm, cid = w.mm, w.town["id"]
    first = mm.post(w.alice["id"], cid, "old")
    mark = first["create_at"]
    made = [mm.post(w.alice["id"], cid, f"n{i}") for i in range(1002)]
    mm.edit_post(first["id"], "old, edited")  # the oldest change by create time
    with api(mm, w.token) as bot:
        since = bot.get(f"/channels/{cid}/posts", params={"since": mark}).json()
        got = since["order"]
        assert len(got) == 1000
        assert got == [p["id"] for p in reversed(made)][:1000]  # newest first, by create_at
        assert first["id"] not in got and made[0]["id"] not in got  # the oldest are left out
        assert since["next_post_id"] == since["prev_post_id"] == ""
        # the pages still list the left-out edit, with the update_at that marks it changed
        last = bot.get(f"/channels/{cid}/posts", params={"page": 5, "per_page": 200}).json()
        assert last["order"][-1] == first["id"]
        assert last["posts"][first["id"]]["message"] == "old, edited"
        assert last["posts"][first["id"]]["update_at"] > mark


# --------------------------------------------------------------------------- reactions, ephemerals, filtering
def test_reaction_events_and_listing(w):
    async def scenario() -> None:
        post = await later(w.mm.post, w.alice["id"], w.town["id"], "react to me")
        ws = await ws_connect(w.mm, w.token)
        with as_user(w, w.bob) as bob:
            r = await later(bob.post, "/reactions", json={"user_id": w.bob["id"], "post_id": post["id"],
                                                         "emoji_name": "thumbsup"})
            assert r.status_code == 201 and set(r.json()) >= {"user_id", "post_id", "emoji_name", "create_at"}
            ev = await next_event(ws)
            assert ev["event"] == "reaction_added" and isinstance(ev["data"]["reaction"], str)
            assert json.loads(ev["data"]["reaction"])["emoji_name"] == "thumbsup"
            listed = (await later(bob.get, f"/posts/{post['id']}/reactions")).json()
            assert [x["user_id"] for x in listed] == [w.bob["id"]]
            bad = await later(bob.post, "/reactions", json={"user_id": w.alice["id"], "post_id": post["id"],
                                                           "emoji_name": "smile"})
            assert bad.status_code == 403
            r = await later(bob.delete, f"/users/me/posts/{post['id']}/reactions/thumbsup")
            assert r.json() == {"status": "OK"}
            ev = await next_event(ws)
            assert ev["event"] == "reaction_removed"
            assert json.loads(ev["data"]["reaction"])["user_id"] == w.bob["id"]
        await ws.close()

    asyncio.run(scenario())


def test_ephemeral_reaches_only_its_target(w):
    async def scenario() -> None:
        alice = await ws_connect(w.mm, w.mm.token_for(w.alice["id"]))
        bob = await ws_connect(w.mm, w.mm.token_for(w.bob["id"]))
        with api(w.mm, w.token) as bot:
            r = await later(bot.post, "/posts/ephemeral", json={
                "user_id": w.alice["id"], "post": {"channel_id": w.town["id"], "message": "only for alice"}})
            assert r.status_code == 201 and r.json()["type"] == "system_ephemeral"
        with as_user(w, w.carol) as carol:  # create_post_ephemeral is an admin permission
            r = await later(carol.post, "/posts/ephemeral", json={
                "user_id": w.alice["id"], "post": {"channel_id": w.town["id"], "message": "x"}})
            assert r.status_code == 403
        await later(w.mm.post, w.carol["id"], w.town["id"], "for everyone")
        ev = await next_event(alice)
        assert ev["event"] == "ephemeral_message" and ev["broadcast"]["user_id"] == w.alice["id"]
        assert json.loads(ev["data"]["post"])["message"] == "only for alice"
        assert (await next_event(alice))["event"] == "posted"
        ev = await next_event(bob)  # bob's first event is the public post: no ephemeral for him
        assert ev["event"] == "posted" and json.loads(ev["data"]["post"])["message"] == "for everyone"
        assert [(u, p["message"]) for u, p in w.mm.ephemerals] == [(w.alice["id"], "only for alice")]
        await alice.close()
        await bob.close()

    asyncio.run(scenario())


def test_non_members_get_no_events_of_a_private_channel(w):
    async def scenario() -> None:
        carol = await ws_connect(w.mm, w.mm.token_for(w.carol["id"]))
        bot = await ws_connect(w.mm, w.token)
        await later(w.mm.post, w.alice["id"], w.secret["id"], "private words")
        await later(w.mm.post, w.alice["id"], w.town["id"], "public words")
        ev = await next_event(carol)
        assert json.loads(ev["data"]["post"])["message"] == "public words"
        ev = await next_event(bot)
        assert json.loads(ev["data"]["post"])["message"] == "private words"
        assert ev["data"]["channel_type"] == "P" and "mentions" not in ev["data"]
        # membership changes arrive as user_added / user_removed
        await later(w.mm.add_member, w.secret["id"], w.carol["id"])
        ev = await next_event(carol)
        assert ev["event"] == "user_added" and ev["broadcast"]["user_id"] == w.carol["id"]
        assert json.loads((await next_event(bot))["data"]["post"])["message"] == "public words"
        assert (await next_event(bot))["event"] == "user_added"
        await later(w.mm.remove_member, w.secret["id"], w.carol["id"])
        ev = await next_event(carol)
        assert ev["event"] == "user_removed" and ev["data"]["channel_id"] == w.secret["id"]
        await carol.close()
        await bot.close()

    asyncio.run(scenario())


def test_viewing_a_channel_moves_last_viewed_at_and_tells_the_viewer_alone(w):
    async def scenario() -> None:
        bob = await ws_connect(w.mm, w.mm.token_for(w.bob["id"]))
        bot = await ws_connect(w.mm, w.token)
        await later(w.mm.post, w.alice["id"], w.town["id"], "news")
        with as_user(w, w.bob) as client:
            before = (await later(client.get, f"/channels/{w.town['id']}/members/me")).json()
            r = await later(client.post, f"/channels/members/{w.bob['id']}/view",
                            json={"channel_id": w.town["id"]})
            assert r.status_code == 200 and r.json()["status"] == "OK"
            at = r.json()["last_viewed_at_times"][w.town["id"]]
            member = (await later(client.get, f"/channels/{w.town['id']}/members/me")).json()
            assert set(member) >= MEMBER_KEYS and member["last_viewed_at"] == at
            assert at > before["last_viewed_at"]
            r = await later(client.post, f"/channels/members/{w.carol['id']}/view",
                            json={"channel_id": w.town["id"]})
            assert r.status_code == 403  # for oneself only (or edit_other_users)
            r = await later(client.post, f"/channels/members/{w.bob['id']}/view", json={})
            assert r.status_code == 400
        assert (await next_event(bob))["event"] == "posted"
        ev = await next_event(bob)
        assert ev["event"] == "channel_viewed" and ev["data"] == {"channel_id": w.town["id"]}
        assert ev["broadcast"]["user_id"] == w.bob["id"]
        assert (await next_event(bot))["event"] == "posted"
        await later(w.mm.post, w.alice["id"], w.town["id"], "more news")
        # the bot's next event is the next post: it never heard bob's view
        assert json.loads((await next_event(bot))["data"]["post"])["message"] == "more news"
        await bob.close()
        await bot.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- network gaps
def test_drop_and_pause_websockets_then_catch_up_with_since(w):
    mm = w.mm

    async def scenario() -> None:
        ws = await ws_connect(mm, w.token)
        assert await later(mm.wait_for, lambda: mm.ws_connections(w.bot["id"]) == 1)
        last = await later(mm.post, w.alice["id"], w.town["id"], "before the gap")
        assert (await next_event(ws))["event"] == "posted"
        mm.pause_websockets(True)
        assert await later(mm.drop_websockets) == 1
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert mm.ws_connections() == 0
        with pytest.raises(websockets.InvalidStatus) as refused:
            await ws_connect(mm, w.token)
        assert refused.value.response.status_code == 503
        missed = await later(mm.post, w.bob["id"], w.town["id"], "during the gap")
        mm.pause_websockets(False)
        ws = await ws_connect(mm, w.token)
        with api(mm, w.token) as bot:
            r = await later(bot.get, f"/channels/{w.town['id']}/posts", params={"since": last["create_at"]})
        assert r.json()["order"] == [missed["id"]]
        await ws.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- slash commands
@contextlib.contextmanager
def command_server(handler) -> Iterator[str]:
    """A real HTTP endpoint for the command, on its own loop and thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    app.router.add_route("*", "/command", handler)
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    try:
        yield f"http://127.0.0.1:{port}/command"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_slash_command_round_trip_with_delayed_response(w):
    mm, seen, tasks = w.mm, [], []
    ctx = ssl.create_default_context(cafile=mm.ca_file)

    async def delayed(url: str) -> None:
        await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"response_type": "in_channel", "text": "Summary ready"},
                                    ssl=ctx) as resp:
                assert resp.status == 200

    async def handler(request: web.Request) -> web.Response:
        form = dict(await request.post())
        seen.append((dict(request.headers), form))
        if form["text"] == "later":
            tasks.append(asyncio.ensure_future(delayed(form["response_url"])))
            return web.json_response({"response_type": "ephemeral", "text": "Working on it..."})
        return web.json_response({"response_type": "in_channel", "text": f"Summary of {form['text']}"})

    with command_server(handler) as url, api(mm, w.token) as bot:
        spec = {"team_id": w.team["id"], "trigger": "openops", "url": url, "method": "P"}
        r = bot.post("/commands", json=spec)
        assert r.status_code == 201 and r.json()["trigger"] == "openops"
        token = r.json()["token"]
        listed = bot.get("/commands", params={"team_id": w.team["id"]}).json()
        assert [c["trigger"] for c in listed] == ["openops"]
        with as_user(w, w.bob) as bob:
            assert bob.post("/commands", json={"team_id": w.team["id"], "trigger": "x", "url": url,
                                               "method": "P"}).status_code == 403

        root = mm.post(w.alice["id"], w.town["id"], "thread start")
        resp = mm.send_slash_command(w.alice["id"], w.town["id"], "/openops summarize --days 3",
                                     root_id=root["id"])
        assert resp == {"response_type": "in_channel", "text": "Summary of summarize --days 3"}
        headers, form = seen[0]
        assert headers["Authorization"] == f"Token {token}"
        assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        # exactly the reference's fields (slash-commands-custom_index.md): no root_id
        assert set(form) == {"channel_id", "channel_name", "command", "response_url", "team_domain",
                             "team_id", "text", "token", "trigger_id", "user_id", "user_name"}
        keys = ("channel_id", "channel_name", "command", "team_domain", "team_id", "token", "user_id",
                "user_name")
        assert {k: form[k] for k in keys} == {
            "channel_id": w.town["id"], "channel_name": "town-square", "command": "/openops",
            "team_domain": "acme", "team_id": w.team["id"], "token": token, "user_id": w.alice["id"],
            "user_name": "alice"}
        assert form["trigger_id"] and form["response_url"].startswith(mm.url + "/hooks/commands/")
        posted = mm.posts_in(w.town["id"])[-1]
        assert posted["message"] == "Summary of summarize --days 3" and posted["root_id"] == root["id"]
        assert posted["user_id"] == w.alice["id"] and posted["props"]["from_webhook"] == "true"

        later_resp = mm.send_slash_command(w.bob["id"], w.town["id"], "/openops later")
        assert later_resp["text"] == "Working on it..."
        assert mm.ephemerals[-1][0] == w.bob["id"] and mm.ephemerals[-1][1]["message"] == "Working on it..."
        mm.wait_for(lambda: mm.posts_in(w.town["id"])[-1]["message"] == "Summary ready", timeout=5)
        with pytest.raises(Exception, match="not found"):
            mm.send_slash_command(w.bob["id"], w.town["id"], "/nope")


# --------------------------------------------------------------------------- files
def test_file_upload_download_and_attach(w):
    with api(w.mm, w.token) as bot:
        r = bot.post("/files", data={"channel_id": w.town["id"], "client_ids": "c1"},
                     files={"files": ("notes.txt", b"hello file", "text/plain")})
        assert r.status_code == 201 and r.json()["client_ids"] == ["c1"]
        info = r.json()["file_infos"][0]
        assert {"id", "user_id", "post_id", "channel_id", "create_at", "update_at", "delete_at", "name",
                "extension", "size", "mime_type"} <= set(info)
        assert (info["name"], info["extension"], info["size"], info["mime_type"]) == ("notes.txt", "txt", 10,
                                                                                      "text/plain")
        post = bot.post("/posts", json={"channel_id": w.town["id"], "message": "see file",
                                        "file_ids": [info["id"]]}).json()
        assert post["file_ids"] == [info["id"]] and post["metadata"]["files"][0]["post_id"] == post["id"]
        download = bot.get(f"/files/{info['id']}")
        assert download.content == b"hello file" and "attachment" in download.headers["Content-Disposition"]
        assert bot.get(f"/files/{info['id']}/info").json()["post_id"] == post["id"]
    secret_file = w.mm.upload_file(w.alice["id"], w.secret["id"], "plan.pdf", b"%PDF-1.4")
    assert secret_file["mime_type"] == "application/pdf"
    with as_user(w, w.bob) as bob:
        assert bob.get(f"/files/{secret_file['id']}").status_code == 403
        assert bob.post("/files", data={"channel_id": w.secret["id"]},
                        files={"files": ("a.txt", b"a")}).status_code == 403


# --------------------------------------------------------------------------- a third-party driver
def test_mattermostautodriver_rest_and_websocket(w, monkeypatch):
    autodriver = pytest.importorskip("mattermostautodriver")
    port = int(w.mm.url.rsplit(":", 1)[1])
    driver = autodriver.TypedDriver({"url": "127.0.0.1", "port": port, "scheme": "https",
                                     "verify": w.mm.ca_file, "token": w.token, "timeout": 5})
    assert driver.login()["id"] == w.bot["id"]
    assert driver.channels.get_channel(w.town["id"])["name"] == "town-square"
    monkeypatch.setenv("SSL_CERT_FILE", w.mm.ca_file)  # the driver's websocket uses the default context
    received: list[dict] = []

    async def listen() -> None:
        got = asyncio.Event()

        async def handler(raw: str) -> None:
            msg = json.loads(raw)
            if msg.get("event") == "posted":
                received.append(msg)
                got.set()

        ws = autodriver.Websocket(driver.options, driver.client.token)
        task = asyncio.ensure_future(ws.connect(handler))
        await asyncio.to_thread(w.mm.wait_for, lambda: w.mm.ws_connections(w.bot["id"]) == 1)
        await asyncio.to_thread(w.mm.post, w.alice["id"], w.town["id"], "hi @openops")
        await asyncio.wait_for(got.wait(), 5)
        ws.disconnect()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(listen())
    assert json.loads(received[0]["data"]["post"])["message"] == "hi @openops"
    assert time.monotonic() - started < 5
    driver.close()
