"""Property: over random workspaces, no search by any user ever returns text from a channel the
user may not read, before and after memberships are revoked and the workspace re-ingested; and
every user finds all the content they may read. Both search strategies (exact over a narrow
scope, over-fetch + verify over a broad one) are exercised."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.pipeline import ingest_path
from rag.runtime import Runtime
from rag.settings import Settings
from tests.workspace import WS

WORDS = ["invoice", "deploy", "roadmap", "outage", "budget", "hiring", "launch", "audit",
         "kernel", "design", "pricing", "backup"]


@st.composite
def workspaces(draw):
    n_teams = draw(st.integers(1, 3))
    teams = [f"team{t}" for t in range(n_teams)]
    channels = []  # (team, name, type, archived)
    for t in teams:
        for c in range(draw(st.integers(1, 4))):
            ctype = draw(st.sampled_from("OOP"))
            channels.append((t, f"{t}-ch{c}", ctype, draw(st.booleans()) and c > 0 and
                             draw(st.integers(0, 4)) == 0))
    n_users = draw(st.integers(2, 6))
    users = []
    for u in range(n_users):
        member_teams = draw(st.sets(st.sampled_from(teams), max_size=len(teams)))
        chans = {t: [c[1] for c in channels if c[0] == t and draw(st.booleans())]
                 for t in member_teams}
        users.append({"name": f"user{u}.x", "teams": chans, "guest": draw(st.integers(0, 4)) == 0,
                      "deactivated": draw(st.integers(0, 6)) == 0,
                      # a placeholder row of the live mirror: guest status and roles unknown
                      "unknown": draw(st.integers(0, 4)) == 0})
    names = [u["name"] for u in users]
    directs = draw(st.lists(st.sets(st.sampled_from(names), min_size=2, max_size=3),
                            max_size=3, unique_by=lambda s: tuple(sorted(s))))
    revoke = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.booleans()), max_size=3))
    strategy_exact = draw(st.booleans())
    return {"teams": teams, "channels": channels, "users": users,
            "directs": [sorted(d) for d in directs], "revoke": revoke,
            "exact": strategy_exact}


def build(spec) -> tuple[WS, dict[str, str]]:
    ws = WS()
    for t in spec["teams"]:
        ws.team(t)
    for t, name, ctype, archived in spec["channels"]:
        ws.channel(t, name, ctype, archived)
    for u in spec["users"]:
        ws.user(u["name"], u["teams"], guest=u["guest"], deactivated=u["deactivated"])
    marker: dict[str, str] = {}  # marker -> channel key
    counter = itertools.count()
    for t, name, _ctype, _ in spec["channels"]:
        members = [u["name"] for u in spec["users"] if name in u["teams"].get(t, [])]
        author = members[0] if members else spec["users"][0]["name"]
        if not members:  # the importer requires an author; make them a channel member
            first = next(u for u in ws.users if u["username"] == author)
            team = next((x for x in first["teams"] if x["name"] == t), None)
            if team is None:
                team = {"name": t, "roles": "team_user", "channels": []}
                first["teams"].append(team)
            team["channels"].append({"name": name, "roles": "channel_user"})
        for i in range(2):
            m = f"zq{next(counter)}"
            marker[m] = f"{t}/{name}"
            ws.post(t, name, author, f"Note {m} about the {WORDS[i % len(WORDS)]} for {name}.",
                    at=i * 100)
    for d in spec["directs"]:
        m = f"zq{next(counter)}"
        marker[m] = "dm:" + ",".join(d)
        ws.direct(d, d[0], f"Private note {m} between {', '.join(d)}.")
    return ws, marker


def unknown_of(spec) -> frozenset[str]:
    return frozenset(u["name"] for u in spec["users"] if u.get("unknown"))


def mark_unknown(db, spec) -> None:
    """Make some users what the live mirror's placeholder rows are (a member or author it has
    not fetched yet): no roles, so no known guest status. The bulk loader knows every user, so
    this is applied to the database after each load."""
    from sqlalchemy import update

    from rag.db import User

    names = sorted(unknown_of(spec))
    if names:
        with db.session() as s:
            s.execute(update(User).where(User.username.in_(names)).values(roles="",
                                                                          is_guest=False))
            s.commit()


def revoke(ws: WS, spec) -> None:
    """The newer snapshot: some users lose a channel membership in each team, or are
    deactivated."""
    for idx, deactivate in spec["revoke"]:
        user = ws.users[idx]
        if deactivate:
            user["delete_at"] = 1
        else:
            for t in user["teams"]:
                t["channels"] = t["channels"][1:]


def oracle(ws: WS, unknown: frozenset[str] = frozenset(), *,
           unknown_guest: bool = True) -> dict[str, set[str]]:
    """Mattermost's rules, written independently of rag.permissions, over the export itself.
    A user whose guest status is unknown reads as a guest (unknown means private); with
    ``unknown_guest=False``, as a member (what they might read: who might see a reply)."""
    chan = {f"{c['team']}/{c['name']}": c for c in ws.channels}
    readable: dict[str, set[str]] = {}
    for u in ws.users:
        can: set[str] = set()
        if not u["delete_at"]:
            guest = (unknown_guest if u["username"] in unknown
                     else u["roles"] == "system_guest")
            for t in u["teams"]:
                mine = {f"{t['name']}/{c['name']}" for c in t["channels"]}
                for key, c in chan.items():
                    if c["team"] != t["name"] or c.get("deleted_at"):
                        continue
                    if key in mine or (c["type"] == "O" and not guest):
                        can.add(key)
            for d in ws.directs:
                if u["username"] in d["members"]:
                    can.add("dm:" + ",".join(sorted(d["members"])))
        readable[u["username"]] = can
    return readable


def readers_of(ws: WS, key: str, unknown: frozenset[str]) -> set[str]:
    """Who may see a reply posted in ``key``: its readers, and every user of unknown status
    who would be one if they were not a guest."""
    maybe = oracle(ws, unknown, unknown_guest=False)
    return {n for n, can in oracle(ws, unknown).items() if key in can} | {
        n for n in unknown if key in maybe[n]}


def check_answers(rt: Runtime, ws: WS, marker: dict[str, str], unknown: frozenset[str]) -> None:
    """ask, summaries, follow-ups (one's own, on someone else's summary, and in a channel,
    narrowed to its audience) never carry unreadable text. With a model that echoes its whole
    prompt, "carry" covers everything the model was given: system text, history, sources."""
    import asyncio

    from rag.errors import NotFound
    from rag.permissions import audience_scope

    allowed = oracle(ws, unknown)
    key_ids = channel_key_ids(ws)

    def found(text: str) -> set[str]:
        return {marker[m] for m in marker if f"{m} " in text or f"{m}." in text}

    def leaked(user: str, text: str) -> set[str]:
        return found(text) - allowed[user]

    def audience(key: str) -> tuple[object, set[str]]:
        """The scope of a reply posted in ``key``, and (by the oracle) what all who may see
        it may read."""
        with rt.db.session() as s:
            scope = audience_scope(s, key_ids[key])
        readers = readers_of(ws, key, unknown)
        # the place itself is readable by all who see it (an unknown user who could not
        # read it would not see the reply either)
        return scope, ({key} | set.intersection(*(allowed[n] for n in readers))
                       if readers else set())

    def ask(user: str, question: str, conversation_id: str | None = None,
            audience_=None) -> tuple[str, dict]:
        return asyncio.run(collect_answer(rt, user, question, conversation_id, audience_))

    summaries = []
    asks = []
    for u in ws.users:
        name = u["username"]
        text, done = ask(name, "note about the plan")
        assert not leaked(name, text), f"{name}'s answer leaked"
        asks.append((name, done["conversation_id"]))
        text, _ = ask(name, "and what else?", done["conversation_id"])
        assert not leaked(name, text), f"{name}'s follow-up leaked"
        for c in ws.channels[:2]:
            key = f"{c['team']}/{c['name']}"
            events = rt.summaries.events(name, "channel", channel_id=c["name"], days=3650)

            async def run(events):
                return [ev async for ev in events]

            try:
                evs = asyncio.run(run(events))
            except NotFound:
                assert key not in allowed[name], f"{name} was refused {key}"
                continue
            assert key in allowed[name], f"{name} summarised {key}"
            text = "".join(ev.data for ev in evs if ev.type == "token")
            # the rendered summary, its sections and the signals that shaped it too
            text += json.dumps([ev.data for ev in evs if ev.type == "sections"])
            assert not leaked(name, text)
            summaries.append((name, next(ev.data for ev in evs if ev.type == "done")))
            # a summary for someone else: only what both may read, whoever reads it
            for other in ws.users[:3]:
                theirs = other["username"]
                both = allowed[name] & allowed[theirs]
                try:
                    evs = asyncio.run(run(rt.summaries.events(
                        name, "channel", channel_id=c["name"], days=3650, for_user=theirs)))
                except NotFound:
                    assert key not in both, f"{name} was refused {key} for {theirs}"
                    continue
                assert key in both, f"{name} summarised {key} for {theirs}"
                text = json.dumps([ev.data for ev in evs if ev.type in ("token", "sections")])
                assert not found(text) - both, (
                    f"{name}'s summary for {theirs} used {found(text) - both}")
        # the reader's profile (what GET /v1/profile shows) carries only what they may read
        user, scope = rt.summaries.user_scope(name)
        shown = json.dumps(rt.profiles.build(user, scope, vector=False).public())
        assert not leaked(name, shown), f"{name}'s profile shows {leaked(name, shown)}"
    # the bot's replies in a channel: only what every reader of that channel may read, also
    # when they continue a conversation (history) begun in the asker's full scope
    for key in list(key_ids)[:3]:
        readers = sorted(n for n in readers_of(ws, key, unknown) if key in allowed[n])
        if not readers:
            continue
        scope, common = audience(key)
        text, _ = ask(readers[0], "note about the plan", audience_=scope)
        assert not found(text) - common, f"a reply in {key} used {found(text) - common}"
        # a summary posted there: shaped only by what everyone there may read
        c = next(c for c in ws.channels if f"{c['team']}/{c['name']}" == key) \
            if not key.startswith("dm:") else None
        if c is not None:
            evs = asyncio.run(_events(rt.summaries.events(
                readers[0], "channel", channel_id=key_ids[key], days=3650, audience=key_ids[key])))
            text = json.dumps([ev.data for ev in evs if ev.type in ("token", "sections")])
            assert not found(text) - common, f"a summary in {key} used {found(text) - common}"
        for owner, conv in [*asks, *((o, d["conversation_id"]) for o, d in summaries)]:
            if owner not in readers:
                continue
            text, _ = ask(owner, "and what else?", conv, scope)
            assert not found(text) - common, (
                f"{owner}'s follow-up in {key} used {found(text) - common}")
    for owner, done in summaries[:2]:
        for u in ws.users:
            try:
                text, _ = ask(u["username"], "and what else?", done["conversation_id"])
            except NotFound:
                continue  # someone else's summary they may not read: as if it did not exist
            assert not leaked(u["username"], text), (
                f"{u['username']} got {owner}'s summary content")


async def _events(events) -> list:
    return [ev async for ev in events]


async def collect_answer(rt: Runtime, user: str, question: str, conversation_id=None,
                         audience=None) -> tuple[str, dict]:
    parts = []
    done: dict = {}
    async for ev in rt.asker.events(user, question, conversation_id, audience=audience):
        if ev.type == "token":
            parts.append(ev.data)
        elif ev.type == "sources":
            parts.append(" ".join(s["text"] for s in ev.data))
        elif ev.type == "done":
            done = ev.data
    return " ".join(parts), done


def echo(body: dict) -> str:
    """A model that answers with its whole prompt: whatever reached it shows in the answer."""
    def text(content) -> str:
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return str(content or "")

    return "\n".join(f"{m.get('role')}: {text(m.get('content'))}" for m in body["messages"])


@pytest.fixture(scope="module")
def echo_llm():
    from tests.doubles.llm_servers import OpenAIServer

    with OpenAIServer(reply=echo, log_level="critical") as srv:
        yield srv


def check(rt: Runtime, ws: WS, marker: dict[str, str], unknown: frozenset[str]) -> None:
    allowed = oracle(ws, unknown)
    for u in ws.users:
        name = u["username"]
        results = rt.search.search(name, "note about the plan", k=100).results
        seen = {m for r in results for m in marker if f"Note {m} " in r.text or f"note {m} " in r.text}
        leaked = {marker[m] for m in seen} - allowed[name]
        assert not leaked, f"{name} saw {leaked}"
        # and finds everything readable (k exceeds the readable chunk count)
        expected = {m for m, key in marker.items() if key in allowed[name]}
        assert seen == expected, f"{name} missed {sorted(marker[m] for m in expected - seen)}"
        # a small k still gets k results whenever k readable chunks exist
        few = rt.search.search(name, "budget", k=2).results
        assert len(few) == min(2, len(expected))


@pytest.mark.slow  # measured: 62 s
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=workspaces())
def test_no_user_ever_sees_a_channel_they_may_not_read(spec, embedder, tmp_path_factory):
    home = tmp_path_factory.mktemp("prop")
    settings_ = Settings(home=home, collection=f"p{uuid.uuid4().hex[:12]}", _env_file=None,
                         exact_scope_max_chunks=10**6 if spec["exact"] else 0)
    rt = Runtime(settings_)
    rt.__dict__["embedder"] = embedder
    try:
        ws, marker = build(spec)
        ingest_path(rt, ws.write(home / "a.jsonl"))
        mark_unknown(rt.db, spec)
        check(rt, ws, marker, unknown_of(spec))
        revoke(ws, spec)  # then re-ingest the newer snapshot
        ingest_path(rt, ws.write(home / "b.jsonl"))
        mark_unknown(rt.db, spec)
        check(rt, ws, marker, unknown_of(spec))
        json.dumps(spec)
    finally:
        rt.close()


def run_answers(spec, embedder, home, **llm) -> None:
    rt = Runtime(Settings(home=home, collection=f"q{uuid.uuid4().hex[:12]}", _env_file=None,
                          exact_scope_max_chunks=10**6 if spec["exact"] else 0, **llm))
    rt.__dict__["embedder"] = embedder
    try:
        ws, marker = build(spec)
        for snapshot in ("a", "b"):
            if snapshot == "b":
                revoke(ws, spec)
            ingest_path(rt, ws.write(home / f"{snapshot}.jsonl"))
            mark_unknown(rt.db, spec)
            check_answers(rt, ws, marker, unknown_of(spec))
    finally:
        rt.close()


@pytest.mark.slow
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=workspaces())
def test_answers_summaries_and_follow_ups_never_use_unreadable_content(spec, embedder,
                                                                      tmp_path_factory):
    run_answers(spec, embedder, tmp_path_factory.mktemp("prop-answers"))


@pytest.mark.slow
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=workspaces())
def test_a_model_echoing_its_whole_prompt_never_shows_unreadable_content(
        spec, embedder, tmp_path_factory, echo_llm):
    """The same checks with a language model that answers with its whole prompt (system,
    history, sources), through the real provider client over HTTP: nothing unreadable ever
    reaches the model, in history or in sources, in channel replies narrowed to the audience."""
    run_answers(spec, embedder, tmp_path_factory.mktemp("prop-echo"),
                llm="openai_compatible:echo", llm_base_url=echo_llm.base_url)


def channel_key_ids(ws: WS) -> dict[str, str]:
    from ingest import ids

    out = {f"{c['team']}/{c['name']}": ids.channel_id(c["team"], c["name"]) for c in ws.channels}
    for d in ws.directs:
        out["dm:" + ",".join(sorted(d["members"]))] = ids.direct_channel_id(d["members"])
    return out


@pytest.mark.slow  # measured: 35 s
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=workspaces())
def test_a_reply_in_a_channel_uses_exactly_what_all_its_readers_may_read(spec, tmp_path_factory):
    """The bot's audience rule: the scope of a reply posted in channel C is the intersection of
    the scopes of everyone who may read C (by the independent oracle), no more and no less;
    before and after revocations."""
    from ingest.bulk import BulkLoader
    from rag.db import open_database
    from rag.permissions import audience_scope, channel_readers

    home = tmp_path_factory.mktemp("audience")
    db = open_database(f"sqlite:///{home / 'a.db'}")
    try:
        ws, _ = build(spec)
        for snapshot in ("a", "b"):
            if snapshot == "b":
                revoke(ws, spec)
            BulkLoader(db).load(ws.write(home / f"{snapshot}.jsonl"))
            mark_unknown(db, spec)
            unknown = unknown_of(spec)
            allowed = oracle(ws, unknown)
            key_of = {v: k for k, v in channel_key_ids(ws).items()}
            from ingest import ids

            uid = {u["username"]: ids.user_id(u["username"]) for u in ws.users}
            with db.session() as s:
                for cid, key in key_of.items():
                    readers = readers_of(ws, key, unknown)
                    assert channel_readers(s, cid) == {uid[n] for n in readers}, key
                    got = {key_of[c] for c in audience_scope(s, cid).channels}
                    want = ({key} | set.intersection(*(allowed[n] for n in readers))
                            if readers else set())
                    assert got == want, f"audience of {key}"
    finally:
        db.dispose()
