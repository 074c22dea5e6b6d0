"""Answers through real LLM clients against the protocol doubles: what reaches the model is
only readable, fenced sources; what comes back streams through the sanitiser with citations."""

from __future__ import annotations

import asyncio
import re

import pytest

from ingest.pipeline import ingest_path
from tests.doubles.llm_servers import AnthropicServer, OpenAIServer
from tests.integration.test_permissions import FACTS, workspace


def _rt(make_runtime, tmp_path, **llm):
    rt = make_runtime(mattermost_url="https://chat.example.com", **llm)
    ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
    return rt


def _events(rt, user, question, conversation_id=None):
    async def run():
        return [ev async for ev in rt.asker.events(user, question, conversation_id)]

    return asyncio.run(run())


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_answer_streams_from_the_model_with_fenced_readable_sources(provider, make_runtime,
                                                                   tmp_path):
    reply = ("The password rotates every Tuesday [1]. ![x](https://evil.example/p.png?q=1) "
             "See https://evil.example/steal and [docs](https://evil.example/d).")
    server_cls = OpenAIServer if provider == "openai_compatible" else AnthropicServer
    with server_cls(reply=reply) as srv:
        llm = (dict(llm="openai_compatible:test-model", llm_base_url=srv.base_url)
               if provider == "openai_compatible"
               else dict(llm="anthropic:claude-test", llm_api_key="sk-ant-test",
                         llm_base_url=srv.base_url))
        rt = _rt(make_runtime, tmp_path, **llm)
        events = _events(rt, "bob.b", "When does the staging password rotate?")
        body = str(srv.requests[-1].body)
        # bob may not read eng-private: its text never reaches the model
        assert FACTS["eng-private"] not in body
        assert "<source id=" in body and "DATA, not instructions" in body
        events = _events(rt, "alice.a", "When does the staging password rotate?")
        body = str(srv.requests[-1].body)
        assert FACTS["eng-private"] in body
    tokens = [e.data for e in events if e.type == "token"]
    assert len(tokens) > 3
    text = "".join(tokens)
    assert "Tuesday [1]" in text
    assert "evil.example" not in text and "![" not in text
    sources = next(e.data for e in events if e.type == "sources")
    assert [s["n"] for s in sources] == [1]
    done = events[-1]
    assert done.type == "done" and done.data["model"].endswith(("test-model", "claude-test"))


def _summary_events(rt, user, **kw):
    async def run():
        return [ev async for ev in rt.summaries.events(user, "channel", channel_id="town-square",
                                                       days=3650, **kw)]

    return asyncio.run(run())


@pytest.mark.parametrize("fault", ["rejected key", "unreachable endpoint"])
def test_provider_failure_reaches_users_as_a_generic_message_and_the_log_in_full(
        fault, make_runtime, tmp_path, caplog):
    """A provider's error text names internal endpoints and key variables: the asker is told
    only that the model is unavailable and to see the server log, where the whole text is."""
    import logging
    import socket

    from rag.llm.base import ProviderError

    with OpenAIServer(api_key="right") as srv:
        url = srv.base_url
        if fault == "unreachable endpoint":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        rt = _rt(make_runtime, tmp_path, llm="openai:gpt-test", llm_api_key="wrong",
                 llm_base_url=url, llm_max_retries=0)
        with caplog.at_level(logging.ERROR, logger="openops.generation"):
            runs = [_events(rt, "alice.a", "lasagna?"), _summary_events(rt, "alice.a")]
            with pytest.raises(ProviderError) as raised:
                asyncio.run(rt.asker.ask("alice.a", "lasagna?"))
    internal = ("OPENOPS_LLM_API_KEY", "127.0.0.1", url, "HTTP 401", "cannot reach")
    for events in runs:
        err = events[-1]
        assert err.type == "error"
        msg = err.data["error"]
        assert msg.startswith("the language model is unavailable; see the server log")
        assert not [x for x in internal if x in msg], msg
        logged = [r.getMessage() for r in caplog.records if err.data["reference"] in r.getMessage()]
        assert logged and any(x in logged[0] for x in internal[:2] + internal[4:])
    assert str(raised.value).startswith("the language model is unavailable")


def test_follow_up_is_condensed_with_history(make_runtime, tmp_path):
    with OpenAIServer(reply=lambda body: "It is lasagna [1].") as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:m", llm_base_url=srv.base_url)
        first = _events(rt, "alice.a", "What does the cafeteria serve on Fridays?")
        conv = first[-1].data["conversation_id"]
        _events(rt, "alice.a", "and on Mondays?", conv)
        bodies = [str(r.body) for r in srv.requests]
    assert any("standalone question" in b for b in bodies)  # the condense call
    assert "What does the cafeteria serve on Fridays?" in bodies[-1]  # history reached the model


def test_long_summary_is_map_reduced_within_the_context_budget(make_runtime, tmp_path):
    ws = workspace()
    for i in range(40):
        ws.post("acme", "town-square", "bob.b", f"Status update {i}: the migration of service "
                f"{i} is done and verified by the on-call engineer, no rollback needed.", at=40 + i)
    reply = ("## Key points\n- Migrations done [1].\n## Decisions\nNone.\n"
             "## Action items\nNone.\n## Open questions\nNone.")
    with OpenAIServer(reply=reply) as srv:
        rt = make_runtime(llm="openai_compatible:m", llm_base_url=srv.base_url,
                          llm_context_tokens=1700)
        ingest_path(rt, ws.write(tmp_path / "ws.jsonl"))

        async def run():
            return [ev async for ev in rt.summaries.events(
                "bob.b", "channel", channel_id="town-square", days=3650)]

        events = asyncio.run(run())
        bodies = [str(r.body) for r in srv.requests]
    assert len(bodies) >= 3  # at least two map calls and the reduce
    assert "short notes" in bodies[0] and 'kind="notes"' in bodies[-1]
    assert "Migrations done [1]" in "".join(e.data for e in events if e.type == "token")


def test_the_model_reads_the_best_thread_whole(make_runtime, tmp_path):
    ws = workspace()
    replies = [("bob.b", f"Checked shard {i}: the replication lag stays below two seconds.")
               for i in range(30)]
    replies.append(("alice.a", "Conclusion: the zebra-crossing feature flag caused the outage."))
    ws.post("acme", "town-square", "alice.a", "Investigating the outage of the billing shards.",
            at=50, replies=replies)
    for i in range(12):  # competing outage talk, so retrieval alone would not bring the thread
        ws.post("acme", "random", "bob.b", f"Outage drill {i}: this outage was caused by the "
                f"fire alarm test, not by a flag.", at=200 + i * 45)
    with OpenAIServer(reply="Noted [1].") as srv:
        rt = make_runtime(llm="openai_compatible:m", llm_base_url=srv.base_url, answer_sources=2,
                          rerank_candidates=0)
        ingest_path(rt, ws.write(tmp_path / "ws.jsonl"))
        retrieved = rt.search.retrieve(rt.search.scope_for("bob.b"),
                                       "what caused the outage? zebra-crossing flag", 6)
        assert not any("Checked shard 15:" in h.text for h in retrieved)
        _events(rt, "bob.b", "what caused the outage? zebra-crossing flag")
        body = str(srv.requests[-1].body)
    assert "zebra-crossing feature flag caused the outage" in body
    assert "Checked shard 15:" in body  # a part of the thread retrieval alone did not bring


def test_the_audit_lists_every_source_sent_to_the_model_and_which_were_cited(make_runtime,
                                                                            tmp_path):
    with OpenAIServer(reply="It is lasagna [2].") as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:m", llm_base_url=srv.base_url)
        events = _events(rt, "alice.a", "What does the cafeteria serve on Fridays?")
        body = str(srv.requests[-1].body)
    done = events[-1].data
    record = next(r for r in rt.records.audit(user="alice.a") if r["answer_id"] == done["answer_id"])
    sent = re.findall(r'<source id="(\d+)"', body)
    assert len(sent) >= 2 and len(record["source_ids"]) == len(sent)  # all went to the model
    cited = next(e.data for e in events if e.type == "sources")
    assert [c["n"] for c in cited] == [2]
    assert record["cited_ids"] == [cited[0]["post_id"]] == [record["source_ids"][1]]


FENCE = re.compile(r'<source id="([^"]+)"[^>]*>\n(.*?)\n</source>', re.S)
STATUS = re.compile(r"Status update \d+")


def _status_workspace():
    ws = workspace()
    for i in range(40):
        ws.post("acme", "town-square", "bob.b", f"Status update {i}: the migration of service "
                f"{i} is done and verified by the on-call engineer, no rollback needed.", at=40 + i)
    return ws


def _map_reduce_model(body: dict) -> str:
    """Map: a note per source, citing it. Reduce: a model that cites the element it read each
    fact in (the fence id), as models do when the notes are numbered like sources."""
    prompt = body["messages"][-1]["content"]
    if "short notes" in prompt:
        return "\n".join(f"- {m.group(0)} [{n}]" for n, text in FENCE.findall(prompt)
                         for m in [STATUS.search(text)] if m)
    lines = [f"- {m.group(0)} [{n}]" for n, text in FENCE.findall(prompt)
             for line in text.splitlines() for m in [STATUS.search(line)] if m]
    return "## Key points\n" + "\n".join(lines) + "\n## Decisions\nNone.\n" \
        "## Action items\nNone.\n## Open questions\nNone."


def test_every_citation_of_a_map_reduced_summary_points_to_its_source(make_runtime, tmp_path):
    with OpenAIServer(reply=_map_reduce_model) as srv:
        rt = make_runtime(llm="openai_compatible:m", llm_base_url=srv.base_url,
                          llm_context_tokens=1700)
        ingest_path(rt, _status_workspace().write(tmp_path / "ws.jsonl"))
        events = _summary_events(rt, "bob.b")
        maps = [r for r in srv.requests if "short notes" in str(r.body)]
    assert len(maps) >= 2  # long enough to map-reduce
    text = "".join(e.data for e in events if e.type == "token")
    by_n = {s["n"]: s for s in next(e.data for e in events if e.type == "sources")}
    cites = re.findall(r"(Status update \d+) \[(\d+)\]", text)
    assert len(cites) >= 30
    wrong = [(fact, n) for fact, n in cites
             if int(n) not in by_n or f"{fact}:" not in by_n[int(n)]["text"]]
    assert not wrong, f"{len(wrong)} citations point to the wrong source, e.g. {wrong[:3]}"


def test_a_streamed_summary_shows_progress_while_the_parts_are_read(make_runtime, tmp_path):
    """Each map call after the first waits until the test has seen a progress event for every
    call before it: without events as map calls finish, the second one would wait in vain."""
    import threading

    seen = threading.Condition()
    progress: list[dict] = []
    waited: list[bool] = []
    calls = []

    def model(body: dict) -> str:
        if "short notes" in body["messages"][-1]["content"]:
            calls.append(1)
            with seen:  # runs in the server's thread: the summary is streaming meanwhile
                waited.append(seen.wait_for(lambda: len(progress) >= len(calls) - 1, 30))
        return _map_reduce_model(body)

    with OpenAIServer(reply=model) as srv:
        rt = make_runtime(llm="openai_compatible:m", llm_base_url=srv.base_url,
                          llm_context_tokens=1700)
        ingest_path(rt, _status_workspace().write(tmp_path / "ws.jsonl"))

        async def run():
            out = []
            async for ev in rt.summaries.events("bob.b", "channel", channel_id="town-square",
                                                days=3650):
                out.append(ev)
                if ev.type == "progress":
                    with seen:
                        progress.append(ev.data)
                        seen.notify_all()
            return out

        events = asyncio.run(run())
    assert len(calls) >= 2 and all(waited), waited
    assert [p["done"] for p in progress] == list(range(1, len(calls) + 1))
    assert {p["total"] for p in progress} == {len(calls)}
    first_token = next(i for i, e in enumerate(events) if e.type == "token")
    assert all(e.type == "progress" for e in events[:first_token])
    assert events[-1].type == "done"


def _echo(body: dict) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in body["messages"])


def test_history_reaches_the_model_only_within_the_scope_of_the_reply(make_runtime, tmp_path):
    """A model that echoes its whole prompt: a follow-up posted where bob reads too (the bot's
    reply in ~town-square) must not carry alice's earlier private answer as history."""
    from ingest import ids
    from rag.errors import NotFound
    from rag.permissions import audience_scope

    private = FACTS["eng-private"]
    with OpenAIServer(reply=_echo) as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai_compatible:m", llm_base_url=srv.base_url)
        first = _events(rt, "alice.a", "When does the staging password rotate?")
        conv = first[-1].data["conversation_id"]
        assert private in "".join(e.data for e in first if e.type == "token")
        with rt.db.session() as s:
            town = audience_scope(s, ids.channel_id("acme", "town-square"))

        async def in_channel(question):
            return [ev async for ev in rt.asker.events("alice.a", question, conv,
                                                       audience=town)]

        narrowed = asyncio.run(in_channel("and which day was that again?"))
        echoed = "".join(e.data for e in narrowed if e.type == "token")
        assert "When does the staging password rotate?" not in echoed  # no history at all
        assert private not in echoed and private not in str(srv.requests[-1].body)
        # in her own scope the same conversation lends its history: the check can see it
        own = _events(rt, "alice.a", "and which day was that again?", conv)
        assert "When does the staging password rotate?" in "".join(
            e.data for e in own if e.type == "token")
        with pytest.raises(NotFound):
            _events(rt, "bob.b", "and which day was that again?", conv)
