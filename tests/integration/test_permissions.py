"""The permission rules, one test per rule, end to end: export -> mirror -> index -> search."""

from __future__ import annotations

import pytest

from ingest.pipeline import ingest_path
from rag.errors import UnknownUser
from tests.workspace import WS

FACTS = {
    "town-square": "The cafeteria serves lasagna on Fridays.",
    "eng-private": "The staging database password rotates every Tuesday.",
    "old-news": "The old office was on Baker Street.",
    "random": "The guest contractor delivered the logo sketches.",
    "beta-general": "Beta team ships the mobile app in March.",
    "dm": "Erin is moving to the Lisbon office in January.",
    "gm": "Surprise party for Frank on Thursday at five.",
}


def workspace() -> WS:
    ws = WS().team("acme").team("beta")
    ws.channel("acme", "town-square").channel("acme", "eng-private", "P")
    ws.channel("acme", "old-news", archived=True).channel("acme", "random")
    ws.channel("beta", "beta-general")
    ws.user("alice.a", {"acme": ["town-square", "eng-private", "old-news"]})
    ws.user("bob.b", {"acme": ["town-square"]})
    ws.user("gina.g", {"acme": ["random"]}, guest=True)
    ws.user("carl.c", {"beta": ["beta-general"]})
    ws.user("dora.d", {"acme": ["town-square", "eng-private"]}, deactivated=True)
    ws.user("erin.e", {"acme": []})
    for i, name in enumerate(["town-square", "eng-private", "old-news", "random"]):
        ws.post("acme", name, "alice.a" if name != "random" else "gina.g", FACTS[name], at=i)
    ws.post("beta", "beta-general", "carl.c", FACTS["beta-general"], at=5)
    ws.direct(["alice.a", "erin.e"], "erin.e", FACTS["dm"], at=6)
    ws.direct(["alice.a", "bob.b", "erin.e"], "bob.b", FACTS["gm"], at=7)
    return ws


@pytest.fixture
def rt(make_runtime, db_kind, tmp_path):
    rt = make_runtime(db_kind)
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    return rt


def visible(rt, user: str) -> set[str]:
    """Every fact the user can find (k above the number of chunks, so nothing is cut)."""
    texts = " ".join(r.text for r in rt.search.search(user, "what is happening", k=50).results)
    return {key for key, fact in FACTS.items() if fact in texts}


def test_public_channels_of_every_team_the_user_belongs_to(rt):
    assert "town-square" in visible(rt, "bob.b")
    assert "random" in visible(rt, "bob.b")  # a public channel he never joined, in his team
    assert "beta-general" not in visible(rt, "bob.b")  # not his team
    assert visible(rt, "carl.c") == {"beta-general"}


def test_private_channel_only_for_members(rt):
    assert "eng-private" in visible(rt, "alice.a")
    assert "eng-private" not in visible(rt, "bob.b")


def test_guest_reads_only_public_channels_they_are_a_member_of(rt):
    assert visible(rt, "gina.g") == {"random"}


def test_direct_message_only_for_participants(rt):
    assert "dm" in visible(rt, "alice.a") and "dm" in visible(rt, "erin.e")
    assert "dm" not in visible(rt, "bob.b")


def test_group_message_only_for_participants(rt):
    for user in ("alice.a", "bob.b", "erin.e"):
        assert "gm" in visible(rt, user)
    assert "gm" not in visible(rt, "carl.c")


def test_archived_channel_is_read_by_nobody(rt):
    for user in ("alice.a", "bob.b", "gina.g", "carl.c", "erin.e"):
        assert "old-news" not in visible(rt, user)


def test_archived_channel_readable_when_the_deployment_opts_in(make_runtime, db_kind, tmp_path):
    rt = make_runtime(db_kind, include_archived=True)
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    assert "old-news" in visible(rt, "alice.a")
    assert "old-news" not in visible(rt, "carl.c")


def test_deactivated_user_reads_nothing(rt):
    assert visible(rt, "dora.d") == set()


def test_unknown_user_reads_nothing(rt):
    with pytest.raises(UnknownUser):
        rt.search.search("nobody.here", "lasagna")
    from rag.permissions import readable_scope

    with rt.db.session() as s:
        assert readable_scope(s, "no-such-id").empty


def test_user_found_by_id_and_by_at_username(rt):
    from rag.permissions import find_user

    with rt.db.session() as s:
        uid = find_user(s, "@alice.a").id
    assert visible(rt, uid) == visible(rt, "alice.a")


def test_newer_export_replaces_memberships_and_takes_effect_on_next_query(rt, tmp_path):
    assert "eng-private" in visible(rt, "alice.a")
    ws = workspace()
    alice = next(u for u in ws.users if u["username"] == "alice.a")
    alice["teams"][0]["channels"] = [{"name": "town-square", "roles": "channel_user"}]
    bob = next(u for u in ws.users if u["username"] == "bob.b")
    bob["delete_at"] = 1
    ingest_path(rt, ws.write(tmp_path / "newer.jsonl"))
    assert "eng-private" not in visible(rt, "alice.a")
    assert visible(rt, "bob.b") == set()
    assert "town-square" in visible(rt, "alice.a")


def test_leaving_a_team_removes_its_channels(rt, tmp_path):
    ws = workspace()
    alice = next(u for u in ws.users if u["username"] == "alice.a")
    alice["teams"] = []
    ingest_path(rt, ws.write(tmp_path / "newer.jsonl"))
    assert visible(rt, "alice.a") == {"dm", "gm"}
