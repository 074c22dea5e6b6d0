"""LLM generators through their real LangChain clients over real HTTP, against local
protocol servers (tests/doubles/llm_servers.py) that speak the OpenAI, Azure OpenAI and
Anthropic wire formats."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from rag.llm.base import ChatMessage, Generation, Generator, ProviderError
from rag.llm.factory import make_generator
from rag.llm.providers import ProviderConfigError
from tests.conftest import ROOT, free_port
from tests.doubles.llm_servers import (
    AnthropicServer,
    OpenAIServer,
    ProtocolServer,
    count_words,
    split_tokens,
    system_text,
)

pytestmark = pytest.mark.timeout(60)

KEY = "sk-test-0123456789abcdef"
REPLY = "The deploy failed because the staging database was full."
SYSTEM = "Answer only from the context. Cite sources."
MESSAGES = [
    ChatMessage("system", SYSTEM),
    ChatMessage("user", "Why did the deploy fail yesterday?"),
]
PROVIDERS = ["openai", "azure_openai", "anthropic", "openai_compatible"]
MODEL = {
    "openai": "gpt-4o-mini",
    "azure_openai": "prod-gpt4o",
    "anthropic": "claude-3-5-haiku-latest",
    "openai_compatible": "llama3.1:8b",
}


@dataclass
class Target:
    provider: str
    server: ProtocolServer

    def make(
        self,
        *,
        api_key: str | None = KEY,
        timeout_s: float = 5.0,
        max_retries: int = 2,
        base_url: str | None = None,
    ) -> Generator:
        azure = self.provider == "azure_openai"
        gen = make_generator(
            f"{self.provider}:{MODEL[self.provider]}",
            base_url=None if azure else (base_url or self.server.base_url),  # type: ignore[attr-defined]
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            azure_endpoint=(base_url or self.server.azure_endpoint) if azure else None,  # type: ignore[attr-defined]
            azure_api_version="2024-10-21" if azure else None,
            context_tokens=None,
        )
        gen.backoff_base_s = 0.02  # type: ignore[attr-defined]  # keep backoff waits short here
        return gen


@pytest.fixture(params=PROVIDERS)
def target(request):
    cls = AnthropicServer if request.param == "anthropic" else OpenAIServer
    with cls(api_key=KEY, reply=REPLY, token_delay_s=0.005) as srv:
        yield Target(request.param, srv)


def run(gen: Generator, generation: Generation | None = None, messages=MESSAGES):
    """Stream to the end or to the error; returns (tokens, generation, error, seconds)."""
    generation = generation or Generation()

    async def go():
        tokens: list[str] = []
        err: ProviderError | None = None
        try:
            async for tok in gen.astream(messages, generation):
                tokens.append(tok)
        except ProviderError as exc:
            err = exc
        finally:
            await gen.aclose()  # type: ignore[attr-defined]
        return tokens, err

    t0 = time.perf_counter()
    tokens, err = asyncio.run(go())
    return tokens, generation, err, time.perf_counter() - t0


# ---- per provider ----------------------------------------------------------------------


def test_streams_tokens_in_order_with_usage_and_first_token_time(target):
    tokens, gen, err, _ = run(target.make())
    assert err is None
    assert tokens == split_tokens(REPLY)
    assert gen.text == REPLY
    assert gen.output_tokens == len(split_tokens(REPLY))
    expected_input = count_words(SYSTEM) + count_words(MESSAGES[1].content)
    assert gen.input_tokens == expected_input
    assert gen.first_token_s is not None and 0 < gen.first_token_s < 5
    assert gen.model
    assert gen.extra["attempts"] == 1

    (req,) = target.server.requests
    assert req.body["stream"] is True
    assert system_text(req.body) == SYSTEM  # the system prompt arrived as a system prompt
    if target.provider == "anthropic":
        assert req.path == "/v1/messages"
        assert req.headers.get("anthropic-version")
        assert [m["role"] for m in req.body["messages"]] == ["user"]
        assert req.body["max_tokens"] > 0
    else:
        assert req.body["stream_options"] == {"include_usage": True}
        if target.provider == "azure_openai":
            assert req.path == f"/openai/deployments/{MODEL['azure_openai']}/chat/completions"
            assert req.query["api-version"] == "2024-10-21"
            assert req.headers["api-key"] == KEY
        else:
            assert req.path == "/v1/chat/completions"
            assert req.body["model"] == MODEL[target.provider]
            assert req.headers["authorization"] == f"Bearer {KEY}"


def test_prepared_outside_any_event_loop_then_streams_as_usual(target):
    """``openops serve`` prepares the client in its warm-up thread, before questions come:
    that sends nothing, and the first question still streams on its own event loop."""
    gen = target.make()
    gen.prepare()
    assert target.server.requests == []
    tokens, _, err, _ = run(gen)
    assert err is None and tokens == split_tokens(REPLY)
    assert len(target.server.requests) == 1


def test_rate_limit_then_success_is_retried_after_retry_after(target):
    target.server.fail_next(1, status=429, retry_after=1)
    tokens, gen, err, seconds = run(target.make())
    assert err is None
    assert "".join(tokens) == REPLY
    assert len(target.server.requests) == 2
    assert gen.extra["attempts"] == 2
    assert seconds >= 0.9  # Retry-After: 1 was honoured


def test_timeout_fails_fast_with_the_timeout_message(target):
    target.server.hang_next(10)
    tokens, gen, err, seconds = run(target.make(timeout_s=0.5, max_retries=2))
    assert tokens == []
    assert err is not None and err.status == 504 and err.retryable
    assert "did not answer within 0.5 s" in str(err)
    assert seconds < 3
    assert len(target.server.requests) == 1  # a read timeout is not retried


def test_rejected_key_names_the_key_setting(target):
    tokens, gen, err, _ = run(target.make(api_key="sk-wrong-key-000000"))
    assert tokens == []
    assert err is not None and err.status == 502 and not err.retryable
    assert "API key was rejected" in str(err)
    assert "OPENOPS_LLM_API_KEY" in str(err)
    assert len(target.server.requests) == 1


def test_server_error_after_first_token_is_not_retried(target):
    target.server.break_stream_next(after_tokens=2, status=500)
    tokens, gen, err, _ = run(target.make())
    first_two = split_tokens(REPLY)[:2]
    assert tokens == first_two  # nothing repeated, nothing invented
    assert gen.text == "".join(first_two)
    assert err is not None and err.status == 502
    assert "mid-answer" in str(err)
    assert len(target.server.requests) == 1


# ---- more failure paths (a subset of providers keeps the file fast) ---------------------


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_server_errors_before_first_token_are_retried(provider):
    cls = AnthropicServer if provider == "anthropic" else OpenAIServer
    with cls(api_key=KEY, reply=REPLY) as srv:
        srv.fail_next(2, status=500 if provider != "anthropic" else 529)
        tokens, gen, err, _ = run(Target(provider, srv).make(max_retries=2))
        assert err is None and "".join(tokens) == REPLY
        assert len(srv.requests) == 3


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_persistent_rate_limit_says_try_later(provider):
    cls = AnthropicServer if provider == "anthropic" else OpenAIServer
    with cls(api_key=KEY) as srv:
        srv.fail_next(5, status=429)
        tokens, gen, err, _ = run(Target(provider, srv).make(max_retries=2))
        assert err is not None and err.status == 503 and err.retryable
        assert "rate limited" in str(err) and "try again later" in str(err)
        assert len(srv.requests) == 3


def test_retry_after_beyond_the_cap_gives_up_at_once():
    with OpenAIServer(api_key=KEY) as srv:
        srv.fail_next(3, status=429, retry_after=120)
        tokens, gen, err, seconds = run(Target("openai", srv).make(max_retries=2))
        assert err is not None and "120 s" in str(err)
        assert len(srv.requests) == 1 and seconds < 5


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_unreachable_server_names_the_url(provider):
    url = f"http://127.0.0.1:{free_port()}" + ("/v1" if provider != "anthropic" else "")
    target = Target(provider, OpenAIServer())  # never started: only the URL matters
    tokens, gen, err, seconds = run(target.make(base_url=url, max_retries=1))
    assert err is not None and err.status == 503 and err.retryable
    assert f"cannot reach {url}: is the server running?" in str(err)
    assert seconds < 5


@pytest.mark.parametrize("provider", ["openai", "azure_openai", "anthropic"])
def test_unknown_model_names_model_and_setting(provider):
    if provider == "anthropic":
        srv: ProtocolServer = AnthropicServer(api_key=KEY, models={"claude-other"})
    else:
        srv = OpenAIServer(api_key=KEY, models={"gpt-other"}, deployments={"other-deployment"})
    with srv:
        tokens, gen, err, _ = run(Target(provider, srv).make())
        assert err is not None and err.status == 502 and not err.retryable
        assert repr(MODEL[provider]) in str(err) and "OPENOPS_LLM=" in str(err)
        assert len(srv.requests) == 1


def test_dropped_connection_mid_stream_keeps_the_partial_text():
    with OpenAIServer(api_key=KEY, reply=REPLY, log_level="critical") as srv:
        srv.break_stream_next(after_tokens=3, how="disconnect")
        tokens, gen, err, _ = run(Target("openai_compatible", srv).make())
        assert tokens == split_tokens(REPLY)[:3]
        assert err is not None and "mid-answer" in str(err)
        assert len(srv.requests) == 1


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_caller_can_stop_reading_early(provider):
    cls = AnthropicServer if provider == "anthropic" else OpenAIServer
    with cls(api_key=KEY, reply=REPLY, token_delay_s=0.01) as srv:
        gen = Target(provider, srv).make()

        async def go() -> list[str]:
            got: list[str] = []
            stream = gen.astream(MESSAGES, Generation())
            async for tok in stream:  # type: ignore[attr-defined]
                got.append(tok)
                if len(got) == 2:
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            await gen.aclose()  # type: ignore[attr-defined]
            return got

        assert asyncio.run(go()) == split_tokens(REPLY)[:2]
        assert len(srv.requests) == 1


def test_non_streaming_double_answers_like_the_api():
    """The double's non-streaming mode through the raw SDKs (as other code may use them)."""
    import anthropic
    import openai

    with OpenAIServer(api_key=KEY, reply=REPLY) as o, AnthropicServer(api_key=KEY, reply=REPLY) as a:
        done = openai.OpenAI(base_url=o.base_url, api_key=KEY, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}]
        )
        assert done.choices[0].message.content == REPLY and done.usage.prompt_tokens == 2
        msg = anthropic.Anthropic(base_url=a.base_url, api_key=KEY, max_retries=0).messages.create(
            model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].text == REPLY and msg.stop_reason == "end_turn"


# ---- factory ------------------------------------------------------------------------------


def test_factory_rejects_unknown_provider_listing_the_forms():
    with pytest.raises(ValueError) as exc:
        make_generator(
            "gemini:pro",
            base_url=None,
            api_key="k",
            timeout_s=5,
            max_retries=0,
            azure_endpoint=None,
            azure_api_version=None,
            context_tokens=None,
        )
    for form in (
        "openai:<model>",
        "azure_openai:<deployment>",
        "anthropic:<model>",
        "openai_compatible:<model>",
    ):
        assert form in str(exc.value)


@pytest.mark.parametrize(
    ("provider", "env"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("azure_openai", "AZURE_OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
    ],
)
def test_factory_key_falls_back_to_provider_variable(provider, env, monkeypatch):
    monkeypatch.delenv(env, raising=False)
    kw = dict(
        base_url=None,
        timeout_s=5,
        max_retries=0,
        azure_endpoint="https://x.openai.azure.com",
        azure_api_version=None,
        context_tokens=None,
    )
    with pytest.raises(ProviderConfigError) as exc:
        make_generator(f"{provider}:m", api_key=None, **kw)
    assert "OPENOPS_LLM_API_KEY" in str(exc.value) and env in str(exc.value)
    monkeypatch.setenv(env, "from-env")
    assert make_generator(f"{provider}:m", api_key=None, **kw).api_key == "from-env"  # type: ignore[attr-defined]


def test_importing_the_factory_imports_no_langchain():
    code = (
        "import sys, rag.llm.factory; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'langchain_openai', "
        "'langchain_anthropic', 'openai', 'anthropic')]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
