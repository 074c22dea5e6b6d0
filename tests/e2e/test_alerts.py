"""Watches, alerts and catch-ups end to end: OpenOps (`create_app` served by uvicorn, the bot in
the same process) against the Mattermost double over HTTPS and WSS, with the real index,
database and embedding model.

Nothing here waits for time to pass: "nothing was sent" is read from the database once the
index worker has indexed the change (the matcher runs inside that pass), and "sent" from the
double's posts."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from rag.db import BotPost, Catchup, Channel, ChannelMember, Post, User, WatchAlert
from rag.runtime import Runtime
from rag.settings import Settings
from rag.util import now_ms
from rag.watches import utc_day
from tests.conftest import serve_app
from tests.doubles.mattermost import MattermostDouble
from tests.workspace import WS, seed_double

KEY = {"Authorization": "Bearer api-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
DAY = 86_400_000


def wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Env:
    double: MattermostDouble
    settings: Settings
    embedder: object
    ids: dict
    rt: Runtime | None = None
    app: object = None
    base: str = ""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> None:
        """OpenOps on a new runtime over the same database, index and Mattermost."""
        self.rt = Runtime(self.settings)
        self.rt.__dict__["embedder"] = self.embedder
        self.app = create_app(self.rt)
        self.base = self._stack.enter_context(serve_app(self.app))
        wait(lambda: httpx.get(self.base + "/healthz").json()["mattermost_bot"] == "connected",
             what="bot online")

    def stop(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self.rt.close()

    @property
    def bot(self):
        return self.app.state.live.bot

    def uid(self, username: str) -> str:
        return self.ids["users"][username]

    def cid(self, name: str) -> str:
        return self.ids["channels"][name]

    def settled(self, post_id: str, message: str | None = None) -> None:
        """The post is in the mirror (with ``message``) and indexed, listeners included."""
        def there():
            with self.rt.db.session() as s:
                p = s.get(Post, post_id)
                if p is None or (message is not None and p.message != message):
                    return False
                return not s.get(Channel, p.channel_id).dirty
        wait(there, what=f"post {post_id} indexed")
        assert self.app.state.live.worker.wait_idle(60)

    def dm_posts(self, username: str) -> list[dict]:
        dm = self.double.direct_channel(self.uid("openops"), self.uid(username))
        return [p for p in self.double.posts_in(dm["id"]) if not p["delete_at"]]

    def alert_posts(self, username: str) -> list[dict]:
        return [p for p in self.dm_posts(username) if (p.get("props") or {}).get("openops_alert")]

    def rows(self, username: str) -> list[WatchAlert]:
        with self.rt.db.session() as s:
            return list(s.scalars(select(WatchAlert).where(
                WatchAlert.user_id == self.uid(username)).order_by(WatchAlert.id)))

    def command(self) -> None:
        d = self.double
        url = self.base + "/mattermost/command"
        for c in d.commands.values():  # registered for an OpenOps since restarted elsewhere
            if c["trigger"] == "openops" and not c["delete_at"] and c["url"] != url:
                c["delete_at"] = now_ms()  # as an admin deleting it (the double has no route)
        if not [c for c in d.commands.values() if c["trigger"] == "openops" and not c["delete_at"]]:
            cmd = d.register_command(self.ids["team"], "openops", url, self.uid("alice.a"))
            self.settings.mattermost_command_token = cmd["token"]
        else:
            cmd = next(c for c in d.commands.values()
                       if c["trigger"] == "openops" and not c["delete_at"])
        self.rt.settings.mattermost_command_token = cmd["token"]
        self.settings.mattermost_command_token = cmd["token"]

    def slash(self, username: str, channel: str, text: str) -> str:
        self.command()
        return self.double.send_slash_command(self.uid(username), self.cid(channel),
                                              text)["text"]


def spec_ws() -> WS:
    ws = WS().team("acme")
    ws.channel("acme", "town-square").channel("acme", "eng-private", "P").channel("acme", "random")
    ws.user("alice.a", {"acme": ["town-square", "eng-private", "random"]})
    ws.user("bob.b", {"acme": ["town-square", "random"]})
    ws.user("carol.c", {"acme": ["town-square", "eng-private", "random"]})
    ws.user("dave.d", {"acme": ["town-square", "random"]})
    ws.post("acme", "town-square", "alice.a", "Welcome to the team space.", at=0)
    ws.post("acme", "eng-private", "carol.c", "The staging password rotates on Tuesdays.", at=1)
    return ws


@pytest.fixture(scope="module")
def env(embedder, tmp_path_factory):
    double = MattermostDouble().start()
    ids = seed_double(double, spec_ws(), creator="alice.a")
    settings = Settings(home=tmp_path_factory.mktemp("alerts"),
                        collection=f"a{uuid.uuid4().hex[:12]}", _env_file=None,
                        mattermost_url=double.url, mattermost_token=double.bot_token,
                        mattermost_ca_file=double.ca_file, api_key="api-key",
                        admin_api_key="admin-key", bot_stream_interval_ms=50,
                        bot_stream_tokens=8, catchup_min_posts=3)
    e = Env(double, settings, embedder, ids)
    try:
        e.start()
        reindex(e, "all")
        yield e
    finally:
        with contextlib.suppress(Exception):
            e.stop()
        double.stop()


def reindex(env: Env, scope) -> dict:
    r = httpx.post(env.base + "/v1/reindex", json={"scope": scope}, headers=ADMIN)
    assert r.status_code == 202, r.text
    job = r.json()
    done = wait(lambda: (j := httpx.get(f"{env.base}/v1/jobs/{job['job_id']}",
                                        headers=ADMIN).json())["status"]
                in ("done", "failed", "cancelled") and j, 120, "re-index job")
    assert done["status"] == "done", done
    return done


def watch(env: Env, username: str, topic: str) -> dict:
    r = httpx.post(env.base + "/v1/watches", json={"user": username, "topic": topic},
                   headers=KEY)
    assert r.status_code == 201, r.text
    return r.json()


# ---- the store ----------------------------------------------------------------------------
def test_watches_through_the_api_and_the_slash_commands(env):
    d = env.double
    w = watch(env, "bob.b", "quarterly budget review")
    r = httpx.get(env.base + "/v1/watches", params={"user": "bob.b"}, headers=KEY)
    assert r.status_code == 200 and w in r.json()["watches"]
    # a person acts for themselves only
    token = {"Authorization": f"Bearer {d.token_for(env.uid('dave.d'))}"}
    r = httpx.get(env.base + "/v1/watches", params={"user": "bob.b"}, headers=token)
    assert r.status_code == 403 and "error" in r.json()
    r = httpx.delete(f"{env.base}/v1/watches/{w['id']}", params={"user": "dave.d"}, headers=token)
    assert r.status_code == 404  # not theirs: as if it did not exist
    r = httpx.post(env.base + "/v1/watches", json={"topic": "release train"}, headers=token)
    assert r.status_code == 201 and r.json()["topic"] == "release train"
    r = httpx.post(env.base + "/v1/watches", json={"topic": "release"}, headers=KEY)
    assert r.status_code == 422 and "user" in r.json()["error"]  # a key must name the user
    r = httpx.post(env.base + "/v1/watches", json={"user": "bob.b", "topic": "the and"},
                   headers=KEY)
    assert r.status_code == 422 and "stopword" in r.json()["error"]

    out = env.slash("dave.d", "town-square", "/openops watch kubernetes cluster upgrade")
    assert "Watching #" in out and "kubernetes cluster upgrade" in out
    listed = env.slash("dave.d", "town-square", "/openops watch list")
    assert "release train" in listed and "kubernetes cluster upgrade" in listed
    rid = next(x["id"] for x in httpx.get(
        env.base + "/v1/watches", params={"user": "dave.d"}, headers=KEY).json()["watches"]
        if x["topic"] == "release train")
    assert f"Stopped watching #{rid}" in env.slash("dave.d", "town-square",
                                                   f"/openops unwatch {rid}")
    assert "no watch" in env.slash("dave.d", "town-square", f"/openops unwatch {w['id']}")
    assert "Usage" in env.slash("dave.d", "town-square", "/openops unwatch x")
    assert "release train" not in env.slash("dave.d", "town-square", "/openops watch list")
    r = httpx.delete(f"{env.base}/v1/watches/{w['id']}", params={"user": "bob.b"}, headers=KEY)
    assert r.status_code == 200 and r.json()["id"] == w["id"]


# ---- alerts -------------------------------------------------------------------------------
def test_an_alert_reaches_each_owner_once_by_dm_and_never_a_non_reader(env):
    d = env.double
    watch(env, "alice.a", "billing api outage")
    watch(env, "bob.b", "billing api outage")  # bob is not in eng-private
    carol = env.uid("carol.c")
    p1 = d.post(carol, env.cid("eng-private"),
                "The billing API outage: invoices fail with HTTP 500 since the deploy.")
    d.post(carol, env.cid("eng-private"), "Rolling back the billing API now.", root_id=p1["id"])
    p2 = d.post(carol, env.cid("town-square"), "Postmortem of the billing API outage on Thursday.")
    env.settled(p2["id"])
    wait(lambda: len(env.alert_posts("alice.a")) == 2 and len(env.alert_posts("bob.b")) == 1
         and all(a.status == "sent" for a in env.rows("alice.a") + env.rows("bob.b")),
         what="the alerts posted and marked sent")
    assert {(a.channel_id, a.thread_id, a.status) for a in env.rows("alice.a")} == {
        (env.cid("eng-private"), p1["id"], "sent"), (env.cid("town-square"), p2["id"], "sent")}
    assert [(a.channel_id, a.status) for a in env.rows("bob.b")] == [
        (env.cid("town-square"), "sent")]
    private = next(p for p in env.alert_posts("alice.a") if "~eng-private" in p["message"])
    assert "HTTP 500" in private["message"] or "Rolling back" in private["message"]
    assert f"]({d.url}/acme/pl/" in private["message"]  # the permalink stays a link
    assert "staging password" not in private["message"]
    assert not any("eng-private" in p["message"] or "HTTP 500" in p["message"]
                   for p in env.alert_posts("bob.b"))
    # an edit re-indexes the thread, which matches again: no second alert
    edited = "Postmortem of the billing API outage moved to Friday."
    d.edit_post(p2["id"], edited)
    env.settled(p2["id"], edited)
    assert len(env.rows("alice.a")) == 2 and len(env.rows("bob.b")) == 1
    assert len(env.alert_posts("alice.a")) == 2 and len(env.alert_posts("bob.b")) == 1


def test_alerts_stop_at_the_daily_cap(env):
    d = env.double
    env.rt.settings.watch_daily_cap = 2
    try:
        watch(env, "dave.d", "kubernetes cluster upgrade")
        for n in range(3):  # three threads
            root = d.post(env.uid("alice.a"), env.cid("random"),
                          f"Kubernetes cluster upgrade, step {n}: the nodes drain tonight.")
            reply = d.post(env.uid("bob.b"), env.cid("random"), "Noted, thanks.",
                           root_id=root["id"])
            env.settled(reply["id"])
        wait(lambda: len(env.alert_posts("dave.d")) == 2
             and all(a.status == "sent" for a in env.rows("dave.d")), what="two alerts")
        assert [a.status for a in env.rows("dave.d")] == ["sent", "sent"]
    finally:
        env.rt.settings.watch_daily_cap = 5


def test_a_removed_member_gets_no_alert_and_a_pending_one_is_skipped(env):
    d = env.double
    eng = env.cid("eng-private")
    alice = env.uid("alice.a")
    mine = watch(env, "alice.a", "database failover drill")
    d.remove_member(eng, alice)
    wait(lambda: not env.bot.can_read(alice, eng), what="the removal mirrored")
    p = d.post(env.uid("carol.c"), eng,
               "The database failover drill runs Saturday; the replica takes over at 02:00.")
    env.settled(p["id"])
    assert not [a for a in env.rows("alice.a") if a.thread_id == p["id"]]
    # an alert raised before the removal and not sent yet: sending re-checks, and skips it
    with env.rt.db.session() as s:
        row = WatchAlert(watch_id=mine["id"], user_id=alice, channel_id=eng, thread_id=p["id"],
                         score=0.9, day=utc_day(now_ms()), status="pending",
                         created_at=now_ms())
        s.add(row)
        s.commit()
        rid = row.id
    before = len(env.alert_posts("alice.a"))
    env.bot.alerts.wake()
    wait(lambda: env.rows("alice.a")[-1].status == "skipped", what="the skip")
    assert len(env.alert_posts("alice.a")) == before
    assert not [x for x in env.alert_posts("alice.a")
                if x["props"]["openops_alert"] == str(rid)]
    d.add_member(eng, alice)


# ---- catch-ups ----------------------------------------------------------------------------
def decided(env: Env, username: str, channel_id: str) -> int:
    return env.bot.catchup_dms.decided.get((env.uid(username), channel_id), 0)


def new_channel(env: Env, name: str, posts: int, *, members=()) -> str:
    """A public channel alice creates, with ``members`` joining before her ``posts``."""
    d = env.double
    ch = d.add_channel(env.ids["team"], name, "O", creator_id=env.uid("alice.a"))
    d.add_member(ch["id"], env.uid("openops"))
    env.ids["channels"][name] = ch["id"]
    for m in members:
        d.add_member(ch["id"], env.uid(m))
    for m in members:  # their joins are decided (nothing to catch up on yet)
        wait(lambda m=m: decided(env, m, ch["id"]), what=f"{m}'s join")
    last = None
    for n in range(posts):
        last = d.post(env.uid("alice.a"), ch["id"],
                      f"Launch plan item {n}: the {['landing page', 'press kit', 'pricing'][n % 3]}"
                      " is ready for review by Wednesday.")
    env.settled(last["id"])
    return ch["id"]


def summaries_in_dm(env: Env, username: str) -> list[dict]:
    dm = env.double.direct_channel(env.uid("openops"), env.uid(username))
    with env.rt.db.session() as s:
        ids = list(s.scalars(select(BotPost.post_id).where(
            BotPost.channel_id == dm["id"], BotPost.kind == "summary",
            BotPost.trigger_id.like("catchup:%"))))
    return [env.double.get_post(i) for i in ids]


def catchup_rows(env: Env, channel_id: str) -> dict[str, str]:
    with env.rt.db.session() as s:
        names = {u.id: u.username for u in s.scalars(select(User))}
        return {names[c.user_id]: c.status for c in s.scalars(
            select(Catchup).where(Catchup.channel_id == channel_id))}


def test_a_catchup_on_joining_goes_only_to_readers_who_opted_in_once_a_day(env):
    d = env.double
    assert "Catch-ups are on" in env.slash("carol.c", "town-square", "/openops catchup on")
    assert "Catch-ups are off" in env.slash("bob.b", "town-square", "/openops catchup off")
    cid = new_channel(env, "launch", 4)
    dms = len(summaries_in_dm(env, "carol.c"))
    d.add_member(cid, env.uid("bob.b"))  # opted out
    d.add_member(cid, env.uid("dave.d"))  # never opted in
    d.add_member(cid, env.uid("carol.c"))
    wait(lambda: all(decided(env, u, cid) for u in ("bob.b", "dave.d", "carol.c")), 120,
         "the three joins")
    assert catchup_rows(env, cid) == {"carol.c": "sent"}
    got = summaries_in_dm(env, "carol.c")
    assert len(got) == dms + 1
    text = got[-1]["message"]
    assert "Catch-up: 4 posts in ~launch since you joined" in text
    assert "press kit" in text or "landing page" in text
    with env.rt.db.session() as s:  # the audit log says the bot acted, not carol
        from rag.db import AuditRecord

        assert s.scalar(select(AuditRecord.actor).where(
            AuditRecord.user_id == env.uid("carol.c"), AuditRecord.action == "summary")
            .order_by(AuditRecord.id.desc())) == "bot:catchup"
    # leaving and joining again the same day: nothing more
    d.remove_member(cid, env.uid("carol.c"))
    d.add_member(cid, env.uid("carol.c"))
    wait(lambda: decided(env, "carol.c", cid) >= 2, 60, "the second join")
    assert len(summaries_in_dm(env, "carol.c")) == dms + 1
    assert catchup_rows(env, cid) == {"carol.c": "sent"}


def test_a_catchup_when_a_reader_comes_back_after_days_away(env):
    d = env.double
    env.slash("carol.c", "town-square", "/openops catchup on")
    env.slash("dave.d", "town-square", "/openops catchup on")
    cid = new_channel(env, "roadmap", 3, members=("carol.c", "dave.d"))
    away = now_ms() - 4 * DAY
    d.set_last_viewed(cid, env.uid("carol.c"), away)
    d.set_last_viewed(cid, env.uid("dave.d"), now_ms() - DAY)  # away one day only
    reindex(env, {"channel_id": cid})  # the mirror reads the members' last views
    with env.rt.db.session() as s:
        assert s.get(ChannelMember, (cid, env.uid("carol.c"))).last_viewed_at == away
    dms = len(summaries_in_dm(env, "carol.c"))
    # posting marks the channel viewed for the poster: the view the bot hears
    d.post(env.uid("dave.d"), cid, "Morning all.")
    d.post(env.uid("carol.c"), cid, "Back from leave, catching up.")
    wait(lambda: decided(env, "dave.d", cid) >= 2 and decided(env, "carol.c", cid) >= 2, 120,
         "the two returns")
    assert catchup_rows(env, cid) == {"carol.c": "sent"}
    got = summaries_in_dm(env, "carol.c")
    assert len(got) == dms + 1 and "while you were away" in got[-1]["message"]
    with env.rt.db.session() as s:
        assert s.get(ChannelMember, (cid, env.uid("carol.c"))).last_viewed_at > away

    # channel_viewed (data.channel_id, broadcast.user_id) goes to the viewer alone; handed to
    # the bot, it reads the previous view from the mirror and moves it
    design = new_channel(env, "design", 3, members=("carol.c",))
    d.set_last_viewed(design, env.uid("carol.c"), now_ms() - 5 * DAY)
    reindex(env, {"channel_id": design})
    d.view_channel(env.uid("carol.c"), design)
    event, data, broadcast = next(e for e in reversed(d.events) if e[0] == "channel_viewed")
    assert data == {"channel_id": design} and broadcast["user_id"] == env.uid("carol.c")
    before = decided(env, "carol.c", design)
    for _ in range(2):  # viewed twice the same day: one catch-up
        asyncio.run_coroutine_threadsafe(
            env.bot.handle({"event": event, "data": data, "broadcast": broadcast}),
            env.app.state.live._loop).result(30)
    wait(lambda: decided(env, "carol.c", design) >= before + 2, 120, "the views")
    assert catchup_rows(env, design) == {"carol.c": "sent"}
    assert len(summaries_in_dm(env, "carol.c")) == dms + 2


# ---- restarts -----------------------------------------------------------------------------
def test_a_restarted_bot_sends_nothing_twice(env):
    """The bot stops with one alert posted but not marked sent, one claimed but not posted
    and one pending; a new bot and runtime on the same database send each exactly once, and
    none of the alerts sent before."""
    d = env.double
    alice = env.uid("alice.a")
    w = watch(env, "alice.a", "quarterly roadmap planning")
    for n in range(2):
        root = d.post(env.uid("carol.c"), env.cid("town-square"),
                      f"Quarterly roadmap planning, part {n}: themes and owners.")
        reply = d.post(env.uid("bob.b"), env.cid("town-square"), "Thanks.", root_id=root["id"])
        env.settled(reply["id"])
    wait(lambda: len([a for a in env.rows("alice.a") if a.watch_id == w["id"]
                      and a.status == "sent"]) == 2, what="two alerts sent")
    # three more threads the watch does not match; the stop leaves alerts of them half done
    other = watch(env, "alice.a", "zebra crossing repaint")
    threads = []
    for n in range(3):
        root = d.post(env.uid("bob.b"), env.cid("town-square"), f"Lunch menu {n}: soup.")
        threads.append(root)
        reply = d.post(env.uid("dave.d"), env.cid("town-square"), "Yum.", root_id=root["id"])
        env.settled(reply["id"])
    sent_before = {str(a.id) for a in env.rows("alice.a") if a.status == "sent"}
    env.stop()
    dm = d.direct_channel(env.uid("openops"), alice)
    with env.rt.db.session() as s:
        made = []
        for t, status in zip(threads, ("sending", "sending", "pending")):
            row = WatchAlert(watch_id=other["id"], user_id=alice,
                             channel_id=env.cid("town-square"), thread_id=t["id"], score=0.9,
                             day=utc_day(now_ms()), status=status, created_at=now_ms())
            s.add(row)
            s.commit()
            made.append(str(row.id))
    # the first was posted (Mattermost has it), the bot stopped before marking it sent
    d.post(env.uid("openops"), dm["id"], "Lunch menu 0", props={"openops_alert": made[0]})
    env.start()  # a new runtime and bot on the same database, index and Mattermost
    wait(lambda: all(a.status == "sent" for a in env.rows("alice.a") if str(a.id) in made),
         120, "the three resolved")
    counts: dict[str, int] = {}
    for post in env.alert_posts("alice.a"):
        key = post["props"]["openops_alert"]
        counts[key] = counts.get(key, 0) + 1
    assert set(made) | sent_before <= set(counts)
    assert set(counts.values()) == {1}, counts
    first = next(p for p in env.alert_posts("alice.a") if p["props"]["openops_alert"] == made[0])
    assert first["message"] == "Lunch menu 0"  # found, not posted again


# ---- the profile and role-targeted summaries in Mattermost --------------------------------
def test_the_profile_command_shows_and_sets_what_shapes_summaries(env):
    out = env.slash("dave.d", "random", "/openops profile interests lunch spots, running club")
    assert "lunch spots, running club" in out
    shown = env.slash("dave.d", "random", "/openops profile")
    assert "Stated interests: lunch spots, running club" in shown
    assert "interest (3.0): lunch spots — profile" in shown
    assert "channel" in shown and "~acme/random" in shown
    assert "personalisation on" in shown
    assert "generic summary everywhere" in env.slash("dave.d", "random", "/openops profile off")
    r = httpx.get(env.base + "/v1/profile", params={"user": "dave.d"}, headers=KEY)
    assert r.json()["personalize"] is False and r.json()["interests"] == "lunch spots, running club"
    assert "what matters to you first" in env.slash("dave.d", "random", "/openops profile on")
    assert "Usage" in env.slash("dave.d", "random", "/openops profile sideways")


def test_summarize_for_sends_each_reader_theirs_from_what_both_may_read(env):
    d = env.double
    carol = env.uid("carol.c")
    root = d.post(carol, env.cid("eng-private"), "Staging cutover plan: the database moves on "
                  "Saturday and the old cluster is deleted on Monday.")
    d.post(env.uid("alice.a"), env.cid("eng-private"), "Decision: we move staging on Saturday "
           "at 09:00 and I will announce it in the team channel.", root_id=root["id"])
    env.settled(root["id"])
    before = {u: len(env.dm_posts(u)) for u in ("alice.a", "bob.b")}
    seen = len(d.ephemerals)
    out = env.slash("carol.c", "eng-private",
                    f"/openops summarize {root['id']} --for @alice.a,@bob.b")
    assert "Summarising for @alice.a, @bob.b" in out
    # alice may read the thread: hers arrives by DM, shaped for her; bob may not: nothing
    got = wait(lambda: [u_m for u_m in d.ephemerals[seen:] if u_m[0] == carol
                        and "Summaries:" in u_m[1]["message"]], 120, "the report to carol")
    report = got[0][1]["message"]
    assert "@alice.a: sent by direct message" in report and "@bob.b: not sent" in report
    new = env.dm_posts("alice.a")[before["alice.a"]:]
    assert new and new[0]["message"].startswith("_Summary for you, requested by @carol.c_")
    assert "Saturday" in "".join(p["message"] for p in new)
    assert len(env.dm_posts("bob.b")) == before["bob.b"]
    # alice's follow-up in the DM thread is answered from the summary's conversation
    dm = d.direct_channel(env.uid("openops"), env.uid("alice.a"))
    d.post(env.uid("alice.a"), dm["id"], "when is the old cluster deleted?", root_id=new[0]["id"])
    answer = wait(lambda: [p for p in d.posts_in(dm["id"]) if p["root_id"] == new[0]["id"]
                           and p["user_id"] == env.uid("openops") and "Monday" in p["message"]
                           and not p["message"].endswith("…")], 120, "the follow-up answer")
    assert answer
    with env.rt.db.session() as s:
        row = s.get(BotPost, new[0]["id"])
        assert row.kind == "summary" and row.user_id == env.uid("alice.a")


def test_reactions_reach_the_readers_profile_live_and_leave_it_when_removed(env):
    d = env.double
    post = d.post(env.uid("alice.a"), env.cid("town-square"),
                  "Proposal: a shared on-call calendar for the whole team.")
    env.settled(post["id"])

    def reactions(username: str) -> list[dict]:
        r = httpx.get(env.base + "/v1/profile", params={"user": username}, headers=KEY)
        return [s for s in r.json()["signals"] if s["kind"] == "reaction"
                and "on-call calendar" in s["text"]]

    d.react(env.uid("bob.b"), post["id"], "+1")
    got = wait(lambda: reactions("bob.b"), 60, "bob's reaction in his profile")
    assert got[0]["source"].endswith(post["id"])
    d.unreact(env.uid("bob.b"), post["id"], "+1")
    wait(lambda: not reactions("bob.b"), 60, "the reaction gone from bob's profile")


def test_a_rest_post_s_reactions_reach_the_profile(env):
    """A re-index or a catch-up reads posts over REST: their ``metadata.reactions`` count."""
    from ingest.mattermost.mirror import Mirror

    d = env.double
    post = d.post(env.uid("alice.a"), env.cid("random"), "Friday lunch: the new ramen place.")
    env.settled(post["id"])
    rest = {**post, "metadata": {"reactions": [
        {"user_id": env.uid("dave.d"), "post_id": post["id"], "emoji_name": "ramen",
         "create_at": post["create_at"]}]}}
    Mirror(env.rt.db).apply_posts([rest])
    r = httpx.get(env.base + "/v1/profile", params={"user": "dave.d"}, headers=KEY)
    assert any(s["kind"] == "reaction" and "ramen place" in s["text"]
               for s in r.json()["signals"])
