"""Watches against the real index, model and database: the matcher raises an alert once per
matching thread, only for owners who may read the channel (now), within the daily cap; the
alert's message re-applies the gate; profile interests become implicit watches. And the
property over random workspaces: alerts and catch-ups never carry content from a channel the
reader may not read, before and after revocation."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import delete, select, update

from bot.catchup import Catchups
from ingest.bulk import BulkLoader
from ingest.mattermost.mirror import Mirror
from ingest.pipeline import make_indexer
from rag.db import Catchup, User, Watch, WatchAlert
from rag.runtime import Runtime
from rag.settings import Settings
from rag.util import now_ms
from rag.watches import sync_profile_watches
from tests.integration.test_property_permissions import (
    channel_key_ids,
    mark_unknown,
    oracle,
    revoke,
    unknown_of,
    workspaces,
)
from tests.workspace import T0, WS

CHAT = "https://chat.example.com"
RECENT = (now_ms() - T0) // 60_000 - 600  # minutes after T0: ten hours ago


def workspace() -> WS:
    ws = WS().team("acme")
    ws.channel("acme", "eng").channel("acme", "ops-private", "P").channel("acme", "random")
    ws.user("alice.a", {"acme": ["eng", "ops-private", "random"]})
    ws.user("bob.b", {"acme": ["eng", "random"]})
    ws.user("carol.c", {"acme": ["eng", "ops-private", "random"]})
    ws.post("acme", "ops-private", "carol.c",
            "The billing API outage: invoices fail with HTTP 500 since this morning's deploy.",
            at=RECENT, replies=[("carol.c", "Rolling back the billing API now.")])
    ws.post("acme", "eng", "carol.c", "Postmortem of the billing API outage is on Thursday.",
            at=RECENT + 60, replies=[("bob.b", "I will bring the billing API latency graphs.")])
    ws.post("acme", "random", "bob.b", "Lunch at the ramen place on the corner, anyone?",
            at=RECENT + 120)
    return ws


def load(rt: Runtime, ws: WS, path) -> None:
    BulkLoader(rt.db).load(ws.write(path))


def backdate_watches(rt: Runtime) -> None:
    """The workspace's posts are hours old: watches made now must count as older."""
    with rt.db.session() as s:
        s.execute(update(Watch).values(created_at=0))
        s.commit()


def uid(rt: Runtime, name: str) -> str:
    with rt.db.session() as s:
        return s.scalar(select(User.id).where(User.username == name))


def alerts(rt: Runtime) -> list[WatchAlert]:
    with rt.db.session() as s:
        return list(s.scalars(select(WatchAlert).order_by(WatchAlert.id)))


def new_post(rt: Runtime, channel_id: str, user_id: str, message: str, **extra) -> str:
    pid = uuid.uuid4().hex[:26]
    Mirror(rt.db).apply_posts([{"id": pid, "channel_id": channel_id, "user_id": user_id,
                                "message": message, "create_at": now_ms(), **extra}])
    return pid


@pytest.fixture
def rt(make_runtime, tmp_path):
    rt = make_runtime(mattermost_url=CHAT)
    load(rt, workspace(), tmp_path / "ws.jsonl")
    return rt


def test_an_alert_fires_once_per_matching_thread_for_owners_who_may_read_it(rt):
    from ingest import ids

    rt.watches.add("alice.a", "billing api outage")
    rt.watches.add("bob.b", "billing api outage")
    rt.watches.add("bob.b", "kubernetes cluster upgrade")  # nothing is about it
    backdate_watches(rt)
    seen = []
    indexer = make_indexer(rt)
    indexer.listeners.append(lambda batch: seen.append(len(batch.ids)))
    indexer.run()
    got = {(a.user_id, a.channel_id) for a in alerts(rt)}
    eng, ops = ids.channel_id("acme", "eng"), ids.channel_id("acme", "ops-private")
    alice, bob = uid(rt, "alice.a"), uid(rt, "bob.b")
    # bob is not in ops-private; nobody's watch matches the lunch chatter
    assert got == {(alice, eng), (alice, ops), (bob, eng)}
    assert all(a.status == "pending" and a.score >= rt.settings.watch_threshold
               for a in alerts(rt))

    text = rt.watches.message(next(a.id for a in alerts(rt) if a.channel_id == ops))
    assert "HTTP 500" in text or "Rolling back" in text
    assert f"]({CHAT}/acme/pl/" in text and "~ops-private" in text
    assert "Carol C, " in text and "@carol.c" not in text  # named, not mentioned

    # an edit re-embeds the thread and it matches again: still one alert per thread and watch
    root = rt.db.session().scalar(select(WatchAlert.thread_id).where(WatchAlert.channel_id == eng))
    with rt.db.session() as s:
        from rag.db import Post

        post = s.get(Post, root)
        payload = {"id": post.id, "channel_id": post.channel_id, "user_id": post.user_id,
                   "message": post.message + " Edited: the billing API outage root cause.",
                   "create_at": post.create_at, "edit_at": now_ms()}
    Mirror(rt.db).apply_posts([payload])
    before = len(seen)
    indexer.run()
    assert len(seen) > before  # the changed thread was handed to the matcher
    assert {(a.user_id, a.channel_id) for a in alerts(rt)} == got
    assert len(alerts(rt)) == 3

    # nothing new: re-indexing unchanged content hands nothing over
    with rt.db.session() as s:
        from rag.db import Channel

        s.execute(update(Channel).values(dirty=True))
        s.commit()
    before = len(seen)
    indexer.run()
    assert len(seen) == before


def test_the_owners_own_thread_and_content_older_than_the_watch_raise_nothing(rt):
    from ingest import ids

    rt.watches.add("carol.c", "billing api outage")  # carol wrote the ops-private thread
    make_indexer(rt).run()  # not backdated: the workspace's posts predate the watch
    assert alerts(rt) == []
    new_post(rt, ids.channel_id("acme", "ops-private"), uid(rt, "carol.c"),
             "Billing API outage update: invoices flow again after the rollback.")
    make_indexer(rt).run()
    assert alerts(rt) == []  # her own words
    new_post(rt, ids.channel_id("acme", "eng"), uid(rt, "bob.b"),
             "Billing API outage: the rollback fixed the invoices, postmortem notes follow.")
    make_indexer(rt).run()
    assert [(a.user_id, a.channel_id) for a in alerts(rt)] == [
        (uid(rt, "carol.c"), ids.channel_id("acme", "eng"))]


def test_the_daily_cap_keeps_the_best_matches(make_runtime, tmp_path):
    from ingest import ids

    rt = make_runtime(mattermost_url=CHAT, watch_daily_cap=2)
    load(rt, workspace(), tmp_path / "ws.jsonl")
    rt.watches.add("alice.a", "billing api outage")
    backdate_watches(rt)
    make_indexer(rt).run()
    assert len(alerts(rt)) == 2
    # more matching threads the same day: nothing past the cap
    for n in range(3):
        new_post(rt, ids.channel_id("acme", "random"), uid(rt, "bob.b"),
                 f"Billing API outage number {n}: invoices failing again.", )
        make_indexer(rt).run()
    assert len(alerts(rt)) == 2
    # a skipped alert (never sent) does not count against the cap
    with rt.db.session() as s:
        s.execute(update(WatchAlert).where(WatchAlert.id == alerts(rt)[0].id)
                  .values(status="skipped"))
        s.commit()
    new_post(rt, ids.channel_id("acme", "random"), uid(rt, "bob.b"),
             "Billing API outage again: the invoice service fails with HTTP 500.")
    make_indexer(rt).run()
    assert len([a for a in alerts(rt) if a.status != "skipped"]) == 2


def test_revocation_stops_new_alerts_and_a_pending_one_carries_nothing(rt):
    from ingest import ids

    ops = ids.channel_id("acme", "ops-private")
    alice = uid(rt, "alice.a")
    rt.watches.add("alice.a", "billing api outage")
    backdate_watches(rt)
    make_indexer(rt).run()
    pending = next(a for a in alerts(rt) if a.channel_id == ops)
    assert rt.watches.message(pending.id) is not None
    Mirror(rt.db).remove_channel_member(ops, alice)
    assert rt.watches.message(pending.id) is None  # the gate, read at send time
    new_post(rt, ops, uid(rt, "carol.c"),
             "Second billing API outage this week: invoices fail again with HTTP 500.")
    make_indexer(rt).run()
    assert [a.id for a in alerts(rt) if a.channel_id == ops] == [pending.id]
    # deactivated: nothing anywhere
    with rt.db.session() as s:
        s.execute(update(User).where(User.id == alice).values(delete_at=now_ms()))
        s.commit()
    new_post(rt, ids.channel_id("acme", "random"), uid(rt, "bob.b"),
             "The billing API outage is back, invoices fail.")
    make_indexer(rt).run()
    assert all(rt.watches.message(a.id) is None for a in alerts(rt))
    assert not [a for a in alerts(rt) if a.channel_id == ids.channel_id("acme", "random")]


def test_profile_interests_become_watches_and_go_with_them(rt):
    alice = uid(rt, "alice.a")
    with rt.db.session() as s:
        sync_profile_watches(s, alice, "billing API outage, releases, Releases ,", True)
        s.commit()
    _, mine = rt.watches.list_for("alice.a")
    assert [(w["topic"], w["from_profile"]) for w in mine] == [
        ("billing API outage", True), ("releases", True)]
    backdate_watches(rt)
    make_indexer(rt).run()
    assert alerts(rt) and all(a.user_id == alice for a in alerts(rt))
    from rag.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        rt.watches.remove("alice.a", mine[0]["id"])  # changed in the profile, not here
    with rt.db.session() as s:
        sync_profile_watches(s, alice, "releases", True)
        s.commit()
    assert [w["topic"] for w in rt.watches.list_for("alice.a")[1]] == ["releases"]
    assert {a.status for a in alerts(rt)} == {"skipped"}  # its unsent alerts went with it
    with rt.db.session() as s:
        sync_profile_watches(s, alice, "releases", False)
        s.commit()
    assert rt.watches.list_for("alice.a")[1] == []


def test_the_store_refuses_what_it_cannot_match_and_only_the_owner_removes(rt):
    from rag.errors import InvalidRequest, NotFound

    with pytest.raises(InvalidRequest):
        rt.watches.add("alice.a", "the and")
    w = rt.watches.add("alice.a", "Billing  API")
    assert rt.watches.add("alice.a", "billing api")["id"] == w["id"]
    with pytest.raises(NotFound):
        rt.watches.remove("bob.b", w["id"])
    with pytest.raises(NotFound):
        rt.watches.add("nobody.x", "billing")
    assert rt.watches.remove("alice.a", w["id"])["topic"] == "Billing API"


# ---- the property -------------------------------------------------------------------------
WORDS = ["invoice", "deploy", "roadmap", "outage", "budget", "hiring"]


def build_recent(spec, phase: int, ws: WS | None = None, marker: dict | None = None
                 ) -> tuple[WS, dict[str, str]]:
    """The random workspace with posts of the last hours (two per channel, one per DM);
    ``phase`` 2 adds one new post to each channel of the revoked snapshot."""
    from tests.integration.test_property_permissions import build

    if ws is None:
        ws, marker = build(spec)
        for p in ws.posts:
            p["create_at"] += RECENT * 60_000
            for r in p["replies"]:
                r["create_at"] += RECENT * 60_000
        for d in ws.dposts:
            d["create_at"] += RECENT * 60_000
    if phase == 2:
        counter = itertools.count(len(marker))
        authors = {(p["team"], p["channel"]): p["user"] for p in ws.posts}
        for c in ws.channels:
            m = f"zq{next(counter)}"
            marker[m] = f"{c['team']}/{c['name']}"
            ws.post(c["team"], c["name"], authors[(c["team"], c["name"])],
                    f"Note {m} about the budget for {c['name']}.", at=RECENT + 400)
    return ws, marker


def check_alerts(rt: Runtime, ws: WS, marker: dict[str, str], unknown: frozenset[str],
                 fresh_from: int) -> None:
    allowed = oracle(ws, unknown)
    key_of = {cid: key for key, cid in channel_key_ids(ws).items()}
    with rt.db.session() as s:
        names = {u.id: u.username for u in s.scalars(select(User))}
    for a in alerts(rt):
        name, key = names[a.user_id], key_of[a.channel_id]
        if a.id >= fresh_from:
            assert key in allowed[name], f"{name} alerted about {key}"
        text = rt.watches.message(a.id)
        if key not in allowed[name]:
            assert text is None, f"{name}'s alert about {key} still carries it"
        elif text is not None:
            carried = {marker[m] for m in marker if f"{m} " in text or f"{m}." in text}
            assert carried <= {key} and carried <= allowed[name], f"{name} got {carried}"


def check_catchups(rt: Runtime, ws: WS, marker: dict[str, str], unknown: frozenset[str]
                   ) -> None:
    allowed = oracle(ws, unknown)
    planner = Catchups(SimpleNamespace(rt=rt, settings=rt.settings))
    with rt.db.session() as s:
        s.execute(delete(Catchup))
        s.commit()
        names = {u.username: u.id for u in s.scalars(select(User))}
    for key, cid in channel_key_ids(ws).items():
        if key.startswith("dm:"):
            continue
        for name, user_id in names.items():
            plan = planner._plan(user_id, cid, None, True)
            if key not in allowed[name]:
                assert plan is None, f"a catch-up of {key} for {name}"
                continue
            if plan is None:
                continue

            async def run(cid=cid, user_id=user_id, since=plan[0]):
                return [ev async for ev in rt.summaries.events(user_id, "channel", channel_id=cid,
                                                               since=since)]

            text = "".join(ev.data for ev in asyncio.run(run()) if ev.type == "token")
            carried = {marker[m] for m in marker if f"{m} " in text or f"{m}." in text}
            assert carried <= allowed[name], f"{name}'s catch-up of {key} carried {carried}"


@pytest.mark.slow
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=workspaces())
def test_alerts_and_catchups_never_carry_unreadable_content(spec, embedder,
                                                           tmp_path_factory):
    home = tmp_path_factory.mktemp("prop-watch")
    # every thread matches every watch, nothing is capped: only the gate decides
    rt = Runtime(Settings(home=home, collection=f"w{uuid.uuid4().hex[:12]}", _env_file=None,
                          mattermost_url=CHAT, watch_threshold=-1.0, watch_daily_cap=10**6,
                          catchup_min_posts=1))
    rt.__dict__["embedder"] = embedder
    try:
        unknown = unknown_of(spec)
        ws, marker = build_recent(spec, 1)
        load(rt, ws, home / "a.jsonl")
        mark_unknown(rt.db, spec)
        for u in ws.users:
            rt.watches.add(u["username"], "note about the plan")
            rt.profiles.update(uid(rt, u["username"]), catchup=True)
        backdate_watches(rt)
        make_indexer(rt).run()
        check_alerts(rt, ws, marker, unknown, fresh_from=0)
        # and every reader who may read a channel's thread (and did not write it) got one
        allowed = oracle(ws, unknown)
        authors = {f"{p['team']}/{p['channel']}": p["user"] for p in ws.posts}
        key_of = {cid: key for key, cid in channel_key_ids(ws).items()}
        with rt.db.session() as s:
            names = {u.id: u.username for u in s.scalars(select(User))}
        got = {(names[a.user_id], key_of[a.channel_id]) for a in alerts(rt)}
        want = {(n, k) for n, keys in allowed.items() for k in keys
                if not k.startswith("dm:") and authors[k] != n}
        assert got == want
        check_catchups(rt, ws, marker, unknown)

        revoke(ws, spec)
        fresh = max((a.id for a in alerts(rt)), default=0) + 1
        ws, marker = build_recent(spec, 2, ws, marker)
        load(rt, ws, home / "b.jsonl")
        mark_unknown(rt.db, spec)
        make_indexer(rt).run()
        check_alerts(rt, ws, marker, unknown, fresh_from=fresh)
        check_catchups(rt, ws, marker, unknown)
    finally:
        rt.close()
