"""Chunking is pure: tested with a whitespace token counter."""

from __future__ import annotations

from ingest.chunking import ChannelInfo, Chunker, FileDoc, Message

CH = ChannelInfo(id="c1", team_id="t1", type="P", name="ops", display_name="Ops", team_name="acme")


def words(text: str) -> int:
    return len(text.split())


def msg(i: int, text: str, root: str = "", minute: int | None = None) -> Message:
    at = 1_790_000_000_000 + (minute if minute is not None else i) * 60_000
    return Message(f"p{i}", root, f"u{i % 2}", f"User {i % 2} (@user{i % 2})", at, text)


def test_thread_lines_carry_author_and_time_and_metadata():
    chunks = Chunker(words, max_tokens=200).chunk_channel(
        CH, [msg(0, "root question"), msg(1, "an answer", root="p0")])
    assert len(chunks) == 1
    c = chunks[0]
    assert c.text.splitlines()[0].startswith("Channel ~ops")
    assert "User 0 (@user0) 2026-09-21 " in c.text and ": root question" in c.text
    m = c.metadata
    assert (m["team_id"], m["channel_id"], m["channel_type"], m["thread_id"]) == ("t1", "c1", "P", "p0")
    assert m["post_ids"] == "p0,p1" and m["author_ids"] == "u0,u1" and m["source"] == "message"
    assert m["first_ts"] < m["last_ts"]


def test_long_thread_is_split_with_overlap_and_stable_ids():
    posts = [msg(0, "root " * 5)] + [msg(i, f"reply {i} " + "word " * 8, root="p0")
                                     for i in range(1, 20)]
    chunker = Chunker(words, max_tokens=60, overlap=1)
    chunks = chunker.chunk_channel(CH, posts)
    assert len(chunks) > 3
    assert all(words(c.text) <= 60 for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        last_of_a = a.metadata["post_ids"].split(",")[-1]
        assert b.metadata["post_ids"].split(",")[0] == last_of_a  # one message of overlap
    covered = {p for c in chunks for p in c.metadata["post_ids"].split(",")}
    assert covered == {p.id for p in posts}
    again = chunker.chunk_channel(CH, list(reversed(posts)))
    assert [c.id for c in again] == [c.id for c in chunks]
    assert [c.hash for c in again] == [c.hash for c in chunks]


def test_a_long_message_is_split_and_keeps_its_prefix():
    text = " ".join(f"sentence{i}." for i in range(300))
    chunks = Chunker(words, max_tokens=50).chunk_channel(CH, [msg(0, text)])
    assert len(chunks) >= 6
    assert all("User 0 (@user0)" in c.text for c in chunks)
    assert all(words(c.text) <= 50 for c in chunks)


def test_unthreaded_posts_form_windows_broken_by_pauses():
    posts = [msg(0, "morning", minute=0), msg(1, "standup in 5", minute=2),
             msg(2, "after lunch", minute=300)]
    chunks = Chunker(words, max_tokens=200, window_gap_ms=30 * 60_000).chunk_channel(CH, posts)
    assert [c.metadata["post_ids"] for c in chunks] == ["p0,p1", "p2"]


def test_edit_changes_the_hash_not_the_id():
    chunker = Chunker(words)
    a = chunker.chunk_channel(CH, [msg(0, "v1 ships Monday")])[0]
    b = chunker.chunk_channel(CH, [msg(0, "v1 ships Friday")])[0]
    assert a.id == b.id and a.hash != b.hash


def test_file_chunks_name_the_file_and_inherit_the_channel():
    f = FileDoc("f1", "p0", "p0", "u0", "User 0", 1_790_000_000_000, "runbook.md", "file",
                "\n\n".join(f"Step {i}: do thing {i}." for i in range(80)))
    chunks = Chunker(words, max_tokens=60).chunk_channel(CH, [msg(0, "see file")], [f])
    files = [c for c in chunks if c.metadata["source"] == "file"]
    assert len(files) > 2
    assert all(c.metadata["file_name"] == "runbook.md" and c.metadata["channel_id"] == "c1"
               for c in files)
    assert all("File runbook.md, shared by User 0" in c.text for c in files)
