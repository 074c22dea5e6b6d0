"""What rag reads for summaries, feedback and conversations: a deleted file or thread is gone,
and what does not exist looks exactly like what the asker may not read (same error, same
status, same message), so no id's existence leaks."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from ingest import ids
from ingest.pipeline import ingest_path
from rag.db import File, Post
from rag.errors import NotFound, OpenOpsError
from tests.integration.test_permissions import workspace


@pytest.fixture
def rt(make_runtime, tmp_path):
    ws = workspace()
    ws.post("acme", "town-square", "bob.b", "Kick-off of the roadmap thread for the quarter.",
            at=20, replies=[("alice.a", "First reply zqone: the roadmap review is on Monday."),
                            ("bob.b", "Second reply zqtwo: the budget review is on Friday.")])
    ws.post("acme", "eng-private", "alice.a", "Private kick-off about the staging rotation.",
            at=21, replies=[("alice.a", "Private reply zqthree: rotation moves to Wednesday.")])
    rt = make_runtime()
    ingest_path(rt, ws.write(tmp_path / "ws.jsonl"))
    return rt


def post_id(rt, starts: str) -> str:
    with rt.db.session() as s:
        return s.scalar(select(Post.id).where(Post.message.startswith(starts)))


def add_transcript(rt, channel: str, post_starts: str, name: str = "standup.vtt") -> str:
    pid = post_id(rt, post_starts)
    fid = f"file-{name}-{channel}"
    with rt.db.session() as s:
        s.add(File(id=fid, post_id=pid, channel_id=ids.channel_id("acme", channel), name=name,
                   kind="transcript", text="[00:00:01] Dana: We decided to ship zqfour on "
                   "Thursday after the review.\n[00:00:09] Eli: I will tell the sales team.",
                   create_at=1))
        s.commit()
    return fid


def summarize(rt, who: str, kind: str, **kw) -> str:
    async def run():
        return [ev async for ev in rt.summaries.events(who, kind, **kw)]

    return "".join(ev.data for ev in asyncio.run(run()) if ev.type == "token")


def refusal(call, key: str) -> tuple[type, int, str]:
    """The error a call raises, its message with the id it names replaced by ``ID``."""
    with pytest.raises(OpenOpsError) as raised:
        call()
    return type(raised.value), raised.value.status, str(raised.value).replace(key, "ID")


def test_missing_and_unreadable_ids_get_the_same_error_on_every_path(rt):
    private_root = post_id(rt, "Private kick-off")
    private_reply = post_id(rt, "Private reply")
    channel = ids.channel_id("acme", "eng-private")
    transcript = add_transcript(rt, "eng-private", "Private kick-off")
    mine = asyncio.run(rt.asker.ask("alice.a", "When does the staging password rotate?"))
    assert "Tuesday" in mine.answer
    pairs = {  # (an id that does not exist, one bob may not read) per path
        "thread": [lambda k: summarize(rt, "bob.b", "thread", thread_id=k),
                   "no-such-post", [private_root, private_reply]],
        "channel": [lambda k: summarize(rt, "bob.b", "channel", channel_id=k, days=3650),
                    "no-such-channel", [channel, "eng-private"]],
        "meeting": [lambda k: summarize(rt, "bob.b", "meeting", file_id=k),
                    "no-such-file", [transcript]],
        "feedback": [lambda k: rt.records.feedback("bob.b", k, "up"),
                     "no-such-answer", [mine.answer_id]],
        "conversation": [lambda k: asyncio.run(rt.asker.ask("bob.b", "which day?", k)),
                         "no-such-conversation", [mine.conversation_id]],
    }
    for path, (call, missing, hidden) in pairs.items():
        want = refusal(lambda call=call, missing=missing: call(missing), missing)
        assert want[0] is NotFound and want[1] == 404, path
        for key in hidden:
            assert refusal(lambda call=call, key=key: call(key), key) == want, path
    # and the owner or a reader still gets them
    assert "zqthree" in summarize(rt, "alice.a", "thread", thread_id=private_reply)
    assert rt.records.feedback("alice.a", mine.answer_id, "up")["rating"] == "up"


def test_a_transcript_deleted_in_the_mirror_is_not_summarised(rt):
    fid = add_transcript(rt, "town-square", "Kick-off of the roadmap")
    assert "zqfour" in summarize(rt, "bob.b", "meeting", file_id=fid)
    with rt.db.session() as s:
        s.execute(update(File).where(File.id == fid).values(delete_at=5))
        s.commit()
    assert refusal(lambda: summarize(rt, "bob.b", "meeting", file_id=fid), fid) == refusal(
        lambda: summarize(rt, "bob.b", "meeting", file_id="nope"), "nope")


def test_replies_of_a_root_deleted_live_are_gone_from_summaries(rt):
    root = post_id(rt, "Kick-off of the roadmap")
    reply = post_id(rt, "First reply")
    assert "zqone" in summarize(rt, "bob.b", "thread", thread_id=reply)
    assert "zqtwo" in summarize(rt, "bob.b", "channel", channel_id="town-square", days=3650)
    with rt.db.session() as s:  # as the live mirror records a deleted root: replies untouched
        s.execute(update(Post).where(Post.id == root).values(delete_at=5))
        s.commit()
    for key in (root, reply):
        assert refusal(lambda key=key: summarize(rt, "bob.b", "thread", thread_id=key),
                       key) == refusal(
            lambda: summarize(rt, "bob.b", "thread", thread_id="nope"), "nope")
    text = summarize(rt, "bob.b", "channel", channel_id="town-square", days=3650)
    assert "lasagna" in text and "zqone" not in text and "zqtwo" not in text
