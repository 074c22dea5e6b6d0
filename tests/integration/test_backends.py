"""The other backends: a Chroma server (`chroma run`) and the Alembic migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from ingest.pipeline import ingest_path
from rag.db import Base, open_database
from tests.integration.test_permissions import FACTS, visible, workspace


def test_chroma_server_mode_ingests_and_searches(make_runtime, chroma_server, tmp_path):
    rt = make_runtime(chroma_url=chroma_server)
    report = ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    assert rt.index.count() == report.index.chunks > 0
    assert not (rt.settings.home / "chroma").exists()  # nothing embedded on disk
    assert "eng-private" in visible(rt, "alice.a")
    assert "eng-private" not in visible(rt, "bob.b")
    # idempotent against the server too
    again = ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    assert again.index.embedded == 0 and rt.index.count() == report.index.chunks
    hits = rt.search.search("alice.a", "when does the password rotate", k=1).results
    assert FACTS["eng-private"] in hits[0].text


def test_migrations_build_the_model_schema(db_kind, make_runtime):
    rt = make_runtime(db_kind)
    insp = inspect(rt.db.engine)
    tables = set(insp.get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    # upgrading again is a no-op
    again = open_database(rt.settings.resolved_database_url)
    again.dispose()


@pytest.mark.parametrize("url,expected", [
    ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_database_url_uses_psycopg3(url, expected):
    from rag.settings import Settings

    assert Settings(database_url=url, _env_file=None).resolved_database_url == expected


def test_warm_fills_the_cache_that_scoped_search_then_uses(make_runtime, tmp_path):
    from sqlalchemy import select

    from rag.db import Channel

    rt = make_runtime()
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    with rt.db.session() as s:
        chans = {c: (n, v) for c, n, v in s.execute(
            select(Channel.id, Channel.chunk_count, Channel.index_version))}
    assert rt.index.warm(chans) == rt.index.count()
    calls = []
    real_get = rt.index.collection.get
    rt.index.collection.get = lambda *a, **kw: calls.append(kw) or real_get(*a, **kw)
    assert "eng-private" in visible(rt, "alice.a")
    assert all("where" not in c for c in calls)  # no embedding loads: only the k docs by id


def test_answers_conversations_feedback_and_audit_on_each_database(db_kind, make_runtime,
                                                                   tmp_path):
    import asyncio

    rt = make_runtime(db_kind)
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    first = asyncio.run(rt.asker.ask("alice.a", "When does the staging password rotate?",
                                     actor="key:integrations"))
    assert FACTS["eng-private"].split(" every ")[1].rstrip(".") in first.answer
    follow = asyncio.run(rt.asker.ask("alice.a", "and which database?", first.conversation_id))
    assert follow.conversation_id == first.conversation_id

    async def summary():
        return [ev async for ev in rt.summaries.events(
            "alice.a", "channel", channel_id="eng-private", days=3650, actor="alice.a")]

    done = asyncio.run(summary())[-1].data
    assert done["conversation_id"]
    assert rt.records.feedback("alice.a", first.answer_id, "down", "too short",
                               actor="alice.a")["rating"] == "down"
    audit = rt.records.audit(user="alice.a")
    assert [r["action"] for r in audit][:4] == ["feedback", "summary", "ask", "ask"]
    # who acted, on each database (migration 0005): the key, the person, or not said
    assert [r["actor"] for r in audit][:4] == ["alice.a", "alice.a", None, "key:integrations"]
    assert audit[0]["answer_id"] == first.answer_id and audit[0]["question"] == "down"
    assert audit[-1]["latency_ms"] > 0 and audit[-1]["channel_ids"]
    assert set(audit[-1]["cited_ids"]) <= set(audit[-1]["source_ids"])


def test_a_summary_follow_up_reads_only_its_posts_and_from_the_cache(make_runtime, tmp_path):
    from rag.permissions import Scope

    rt = make_runtime()
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    scope = rt.search.scope_for("alice.a")
    cid = max(scope.channels, key=lambda c: scope.channels[c][0])
    got = rt.index.collection.get(where={"channel_id": cid}, include=["metadatas"])
    posts = sorted({p for m in got["metadatas"] for p in str(m["post_ids"]).split(",")})
    wanted = set(posts[:2])
    own = Scope(user_id=scope.user_id, channels={cid: scope.channels[cid]})
    query = rt.search.embedder.encode_query("what was decided?")
    hits = rt.index.search_posts(query, own, wanted, 5)
    assert hits and all(wanted & set(str(h.metadata["post_ids"]).split(",")) for h in hits)
    assert all(h.metadata["channel_id"] == cid for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    calls = []
    real_get = rt.index.collection.get
    rt.index.collection.get = lambda *a, **kw: calls.append(kw) or real_get(*a, **kw)
    assert [h.id for h in rt.index.search_posts(query, own, wanted, 5)] == [h.id for h in hits]
    assert calls == []  # the second follow-up: embeddings, post ids and texts all cached
    other = next(c for c in scope.channels if c != cid)
    assert rt.index.search_posts(query, Scope(user_id=scope.user_id,
                                              channels={other: scope.channels[other]}),
                                 wanted, 5) == []  # the posts are not in that channel
