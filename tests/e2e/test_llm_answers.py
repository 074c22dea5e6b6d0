"""Answers through real LLM clients against the protocol doubles: what reaches the model is
only readable, fenced sources; what comes back streams through the sanitiser with citations."""

from __future__ import annotations

import asyncio

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


def test_provider_failure_is_an_error_event_with_the_fix(make_runtime, tmp_path):
    with OpenAIServer(api_key="right") as srv:
        rt = _rt(make_runtime, tmp_path, llm="openai:gpt-test", llm_api_key="wrong",
                 llm_base_url=srv.base_url)
        events = _events(rt, "alice.a", "lasagna?")
    assert events[-1].type == "error"
    assert "OPENOPS_LLM_API_KEY" in events[-1].data["error"]


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
