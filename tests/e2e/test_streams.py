"""Long SSE streams (sse-starlette): keep-alive pings, and the work stops when the client goes
away: the model's stream, behind the API, is closed before it has sent everything.

A real OpenAI-compatible client (LangChain's) over real HTTP to the protocol double; the API
served by uvicorn; the client a raw httpx stream that hangs up after a few tokens."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from api.app import create_app
from ingest.pipeline import ingest_path
from tests.conftest import serve_app
from tests.doubles.llm_servers import OpenAIServer
from tests.integration.test_permissions import workspace

KEY = "stream-key-0123456789"
WORDS = 400
REPLY = " ".join(f"word{i}" for i in range(WORDS)) + " [1]"


class WatchedOpenAI(OpenAIServer):
    """The OpenAI double, also telling how many pieces it streamed and whether its stream
    ended early (the client closed the connection) or ran to the end."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent = 0
        self.finished = False
        self.closed = threading.Event()

    async def _pieces(self, text, limit):
        try:
            async for piece in super()._pieces(text, limit):
                self.sent += 1
                yield piece
            self.finished = True
        finally:
            self.closed.set()


@pytest.fixture
def served(make_runtime, tmp_path):
    with WatchedOpenAI(reply=REPLY, token_delay_s=0.02) as llm:
        rt = make_runtime(api_key=KEY, llm="openai_compatible:test-model",
                          llm_base_url=llm.base_url, sse_ping_s=0.1)
        ingest_path(rt, workspace().write(tmp_path / "ws.jsonl"))
        with serve_app(create_app(rt)) as base:
            yield base, llm


def _lines(base: str, stop_after_tokens: int | None = None) -> list[str]:
    lines: list[str] = []
    tokens = 0
    body = {"user": "alice.a", "question": "When does the staging password rotate?",
            "stream": True}
    with httpx.stream("POST", base + "/v1/ask", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            lines.append(line)
            if line == "event: token":
                tokens += 1
                if stop_after_tokens is not None and tokens >= stop_after_tokens:
                    break  # leaving the block closes the connection mid-stream
    return lines


@pytest.mark.timeout(120)
def test_a_client_that_hangs_up_stops_the_model_stream(served):
    base, llm = served
    lines = _lines(base, stop_after_tokens=5)
    assert lines.count("event: token") == 5
    assert llm.closed.wait(30), "the model's stream was never closed"
    assert not llm.finished and llm.sent < WORDS, (llm.sent, WORDS)
    print(f"client left after 5 tokens; the model had streamed {llm.sent} of {WORDS + 1} pieces")


@pytest.mark.timeout(120)
def test_a_long_stream_carries_keep_alive_pings_and_ends_with_done(served):
    base, llm = served
    lines = _lines(base)
    assert llm.finished
    assert any(line.startswith(": ping") for line in lines), lines[:20]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[0] == "token" and events[-1] == "done" and "sources" in events
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert "word399" in "".join(d for d in data if isinstance(d, str))
