"""Ingest behaviour: idempotence, edits, deletions, bad input, crash and resume, zip exports."""

from __future__ import annotations

import json
import zipfile

import pytest

from ingest.bulk import BulkLoader
from ingest.pipeline import ingest_path, make_indexer
from rag.db import Channel
from tests.workspace import WS


def small_ws() -> WS:
    ws = WS().team("acme")
    ws.channel("acme", "general").channel("acme", "ops", "P")
    ws.user("ann.lee", {"acme": ["general", "ops"]})
    ws.user("ben.kim", {"acme": ["general"]})
    ws.post("acme", "general", "ann.lee", "Kickoff for the billing migration is on Monday.",
            replies=[("ben.kim", "I will prepare the rollback plan."),
                     ("ann.lee", "Great, the cutover window is 02:00-04:00 UTC.")])
    ws.post("acme", "general", "ben.kim", "Lunch order: tacos again?", at=90)
    ws.post("acme", "ops", "ann.lee", "Pager rotation: Ann this week, Ben next week.", at=5)
    return ws


def chunk_texts(rt) -> list[str]:
    return sorted(rt.index.collection.get(include=["documents"])["documents"])


def test_ingest_twice_gives_the_same_index(make_runtime, tmp_path):
    rt = make_runtime()
    path = small_ws().write(tmp_path / "ws.jsonl")
    first = ingest_path(rt, path)
    assert first.load.posts_new == 5 and first.index.chunks > 0
    before = chunk_texts(rt)
    second = ingest_path(rt, path)
    assert second.load.posts_new == 0 and second.load.posts_changed == 0
    assert second.index.embedded == 0
    assert chunk_texts(rt) == before
    assert rt.index.count() == first.index.chunks


def test_edited_post_replaces_its_chunks(make_runtime, tmp_path):
    rt = make_runtime()
    ingest_path(rt, small_ws().write(tmp_path / "a.jsonl"))
    ws = small_ws()
    ws.posts[0]["message"] = "Kickoff for the billing migration moved to Wednesday."
    ws.posts[0]["edit_at"] = ws.posts[0]["create_at"] + 5000
    report = ingest_path(rt, ws.write(tmp_path / "b.jsonl"))
    assert report.load.posts_changed == 1 and report.load.posts_new == 0
    texts = " ".join(chunk_texts(rt))
    assert "moved to Wednesday" in texts and "is on Monday" not in texts
    hits = rt.search.search("ann.lee", "when is the billing migration kickoff", k=1).results
    assert "Wednesday" in hits[0].text


def test_an_edit_reaches_questions_past_the_read_caches(make_runtime, tmp_path):
    """Chunk texts and whole threads read for earlier questions are cached by channel index
    version: an edit and a deleted reply must show in the very next question."""
    rt = make_runtime()
    ingest_path(rt, small_ws().write(tmp_path / "a.jsonl"))

    def thread_text() -> str:
        scope = rt.search.scope_for("ann.lee")
        hit = rt.search.retrieve(scope, "billing migration kickoff", 1)[0]
        key = (str(hit.metadata["thread_id"]), str(hit.metadata["channel_id"]))
        return hit.text + " || " + " ".join(h.text for h in rt.index.thread_chunks([key], scope)[key])

    before = thread_text()
    assert "is on Monday" in before and "rollback plan" in before
    calls = []
    real_get = rt.index.collection.get
    rt.index.collection.get = lambda *a, **kw: calls.append(kw) or real_get(*a, **kw)
    assert thread_text() == before and calls == []  # the same version: served from the caches
    ws = small_ws()
    ws.posts[0]["message"] = "Kickoff for the billing migration moved to Wednesday."
    ws.posts[0]["edit_at"] = ws.posts[0]["create_at"] + 5000
    ws.posts[0]["replies"][0]["delete_at"] = ws.posts[0]["create_at"] + 10_000
    ingest_path(rt, ws.write(tmp_path / "b.jsonl"))
    after = thread_text()
    assert "moved to Wednesday" in after and "is on Monday" not in after
    assert "rollback plan" not in after and "cutover window" in after
    # a scope without the channel gets nothing from the thread cache
    other = rt.search.scope_for("ben.kim")
    ops = next(c for c in rt.search.scope_for("ann.lee").channels if c not in other.channels)
    assert rt.index.thread_chunks([("any-thread", ops)], other) == {}


def test_deleted_post_and_its_thread_disappear(make_runtime, tmp_path):
    rt = make_runtime()
    ingest_path(rt, small_ws().write(tmp_path / "a.jsonl"))
    ws = small_ws()
    ws.posts[0]["delete_at"] = ws.posts[0]["create_at"] + 10_000
    ws.posts[2]["replies"] = []
    report = ingest_path(rt, ws.write(tmp_path / "b.jsonl"))
    assert report.load.posts_deleted >= 1
    texts = " ".join(chunk_texts(rt))
    assert "billing migration" not in texts and "rollback plan" not in texts
    assert "tacos" in texts
    results = rt.search.search("ann.lee", "billing migration rollback", k=10).results
    assert all("billing" not in r.text for r in results)


def test_deleted_reply_disappears_alone(make_runtime, tmp_path):
    rt = make_runtime()
    ingest_path(rt, small_ws().write(tmp_path / "a.jsonl"))
    ws = small_ws()
    ws.posts[0]["replies"][0]["delete_at"] = ws.posts[0]["create_at"] + 10_000
    ingest_path(rt, ws.write(tmp_path / "b.jsonl"))
    texts = " ".join(chunk_texts(rt))
    assert "rollback plan" not in texts and "cutover window" in texts


def test_malformed_line_is_reported_with_its_number_and_the_rest_ingested(make_runtime, tmp_path):
    rt = make_runtime()
    lines = small_ws().lines()
    lines.insert(5, '{"type": "post", "post": {broken')
    lines.insert(7, '{"type": "hologram", "hologram": {}}')
    lines.append(json.dumps({"type": "post", "post": {"team": "acme", "channel": "nowhere",
                                                      "user": "ann.lee", "message": "x",
                                                      "create_at": 1}}))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_path(rt, path)
    assert any(e.startswith("line 6: malformed JSON") for e in report.load.errors)
    assert any("unknown channel acme/nowhere" in e for e in report.load.errors)
    assert report.load.skipped_types["hologram"] == 1
    assert report.load.posts_new == 5
    assert "tacos" in " ".join(chunk_texts(rt))


def test_zip_export_with_attachments_and_a_corrupt_file(make_runtime, tmp_path):
    rt = make_runtime()
    ws = small_ws()
    ws.post("acme", "ops", "ann.lee", "Runbook and the broken scan attached.", at=20,
            attachments=["data/runbook.md", "data/scan.pdf", "data/missing.txt"])
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("import.jsonl", "\n".join(ws.lines()) + "\n")
        z.writestr("data/runbook.md", "# Failover runbook\n\nPromote the replica in eu-west-3 "
                                      "first, then flip the DNS record.\n")
        z.writestr("data/scan.pdf", b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
    report = ingest_path(rt, archive)
    assert report.load.files_ok == 1
    failed = " ".join(report.load.files_failed)
    assert "scan.pdf" in failed and "missing.txt" in failed
    hits = rt.search.search("ann.lee", "which replica do we promote during failover", k=3).results
    top = next(h for h in hits if h.source == "file")
    assert top.file_name == "runbook.md" and "eu-west-3" in top.text
    assert top.channel_type == "P"
    # the file inherits the private channel's permissions
    assert all(h.file_name != "runbook.md" for h in
               rt.search.search("ben.kim", "failover replica promote", k=10).results)


def test_crash_mid_index_resumes_without_duplicates_or_gaps(make_runtime, tmp_path):
    ws = small_ws()
    for i in range(12):
        ws.channel("acme", f"team-{i}")
        ws.users[0]["teams"][0]["channels"].append({"name": f"team-{i}"})
        ws.post("acme", f"team-{i}", "ann.lee", f"Status of workstream {i}: on track.", at=i)
    path = ws.write(tmp_path / "ws.jsonl")

    clean = make_runtime()
    ingest_path(clean, path)
    expected = chunk_texts(clean)

    rt = make_runtime()
    BulkLoader(rt.db).load(path)
    indexer = make_indexer(rt)
    indexer.batch_texts = 1  # one channel per write, so the crash lands mid-run
    real_write, calls = indexer._write, []

    def crashing_write(jobs):
        calls.append(jobs)
        if len(calls) == 4:
            raise RuntimeError("simulated crash")
        real_write(jobs)

    indexer._write = crashing_write
    with pytest.raises(RuntimeError, match="simulated crash"):
        indexer.run()
    with rt.db.session() as s:
        assert s.query(Channel).filter(Channel.dirty.is_(True)).count() > 0
    resumed = make_indexer(rt).run()
    assert resumed.channels < 14
    assert chunk_texts(rt) == expected
    ingest_path(rt, path)
    assert chunk_texts(rt) == expected


def test_missing_export_is_a_clear_error(make_runtime, tmp_path):
    from ingest.bulk import ExportError

    rt = make_runtime()
    with pytest.raises(ExportError, match="no such file"):
        BulkLoader(rt.db).load(tmp_path / "nope.zip")


def test_a_change_that_arrives_while_indexing_keeps_the_channel_dirty(make_runtime, tmp_path):
    rt = make_runtime()
    path = small_ws().write(tmp_path / "a.jsonl")
    BulkLoader(rt.db).load(path)
    indexer = make_indexer(rt)
    real_write = indexer._write

    def write_after_a_late_edit(jobs):
        ws = small_ws()
        ws.posts[1]["message"] = "Lunch order: sushi this time."
        BulkLoader(rt.db).load(ws.write(tmp_path / "b.jsonl"))  # lands mid-run
        real_write(jobs)

    indexer._write = write_after_a_late_edit
    indexer.run()
    assert "tacos" in " ".join(chunk_texts(rt))  # what was read before the edit was written
    assert make_indexer(rt).dirty_channels()  # ...and the edited channel is still dirty
    make_indexer(rt).run()
    texts = " ".join(chunk_texts(rt))
    assert "sushi" in texts and "tacos" not in texts
