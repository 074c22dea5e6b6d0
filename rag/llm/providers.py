"""Hosted and self-hosted chat models behind the small ``Generator`` interface.

Each generator wraps a LangChain chat model (``langchain-openai`` / ``langchain-anthropic``,
imported lazily on first use) and adds what OpenOps needs around it:

* streaming with ``astream``; ``Generation`` gets the text, the token usage the provider
  reports (OpenAI is asked for it with ``stream_options.include_usage``), the model and
  ``first_token_s``;
* connect and read timeouts (the read timeout bounds the wait for every chunk);
* our own retry loop (the SDK's and LangChain's retries are off): 408/409/429/5xx, an
  overloaded server and connection failures are retried with exponential backoff and
  jitter, honouring ``Retry-After`` (capped), **but only until the first token has been
  yielded** - a stream that breaks later fails instead of repeating text the caller has
  already shown;
* failures become ``ProviderError`` with a message that names the setting to fix.

Status codes of the ``ProviderError`` (what the HTTP API answers our own caller):

* 502 Bad Gateway, not retryable: the provider refused a request our configuration
  produced - a rejected API key (401/403), an unknown model or deployment (404), a request
  the provider calls invalid (400, e.g. a prompt over the context window), an exhausted
  quota, or a stream that broke after text was already sent. The caller's request was
  fine; an administrator has to act, so "try again" would not help.
* 502, retryable: the provider kept failing with 5xx after our retries.
* 503 Service Unavailable, retryable: rate limited or overloaded after our retries, or
  the server cannot be reached (connection refused, DNS, TLS).
* 504 Gateway Timeout, retryable: no answer within the read timeout (not retried here:
  a second full wait is worse for a chat user than a prompt error).
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import importlib.util
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from rag.llm.base import ChatMessage, Generation, Generator, ProviderError

log = logging.getLogger(__name__)

KEY_SETTING = "OPENOPS_LLM_API_KEY"
MODEL_SETTING = "OPENOPS_LLM"
BASE_URL_SETTING = "OPENOPS_LLM_BASE_URL"
TIMEOUT_SETTING = "OPENOPS_LLM_TIMEOUT_S"
CONTEXT_SETTING = "OPENOPS_LLM_CONTEXT_TOKENS"

# Retried before the first token: request timeout, conflict (OpenAI's SDK retries it too),
# rate limit, and every server error (529 is Anthropic's "overloaded").
RETRY_STATUSES = frozenset({408, 409, 429})


class ProviderConfigError(ProviderError, ValueError):
    """The generator cannot be built from the configuration (missing key, package, URL)."""

    def __init__(self, message: str):
        super().__init__(message, status=503, retryable=False)


def require_package(module: str, package: str, provider: str) -> None:
    """Fail early (at construction) when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ProviderConfigError(
            f"the {provider} generator needs the {package} package: pip install {package}"
        )


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - checked at construction
        raise ProviderConfigError(f"pip install {package} (needed by {module}): {exc}") from exc


@dataclass
class _Failure:
    error: ProviderError
    retryable: bool  # worth another attempt before the first token
    retry_after: float | None = None  # seconds the server asked us to wait


# --------------------------------------------------------------------------------------
# exception inspection (duck-typed: works for openai, anthropic, httpx and httpx2 errors)
# --------------------------------------------------------------------------------------


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _error_body(exc: BaseException) -> dict:
    """The provider's error object ({"message", "type", "code"...}) if there is one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        return inner if isinstance(inner, dict) else body
    return {}


def _detail(exc: BaseException, limit: int = 300) -> str:
    body = _error_body(exc)
    msg = body.get("message") if body else None
    if not isinstance(msg, str) or not msg:
        msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _root_cause(exc: BaseException) -> str:
    """The innermost message of an exception chain ("[Errno 111] Connection refused")."""
    for e in reversed(_chain(exc)):
        text = " ".join(str(e).split()).rstrip(".")
        if text:
            return text[:200]
    return type(exc).__name__


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return status
    # An error event inside a 200 stream: derive a status from the error type.
    kind = _error_body(exc).get("type") or _error_body(exc).get("code")
    return (
        {
            "rate_limit_error": 429,
            "rate_limit_exceeded": 429,
            "overloaded_error": 529,
            "api_error": 500,
            "server_error": 500,
            "authentication_error": 401,
            "permission_error": 403,
            "not_found_error": 404,
            "invalid_request_error": 400,
        }.get(str(kind))
        if kind
        else None
    )


def _is_timeout(exc: BaseException) -> bool:
    return bool(
        _names(exc) & {"APITimeoutError", "TimeoutException", "StreamChunkTimeoutError"}
        or isinstance(exc, TimeoutError)
    )


def _is_connect_phase(exc: BaseException) -> bool:
    """The request never reached the server (refused, DNS, connect timeout)."""
    return any(_names(e) & {"ConnectError", "ConnectTimeout", "ConnectionRefusedError"} for e in _chain(exc))


def _is_connection(exc: BaseException) -> bool:
    return any(
        _names(e)
        & {"APIConnectionError", "TransportError", "NetworkError", "RemoteProtocolError", "EndOfStream"}
        or isinstance(e, ConnectionError)
        for e in _chain(exc)
    )


def _is_provider_failure(exc: BaseException) -> bool:
    """An error of the provider, the network or the SDKs (not a bug to re-raise as is)."""
    if _status(exc) or _is_timeout(exc) or _is_connection(exc):
        return True
    roots = {"openai", "anthropic", "httpx", "httpx2", "httpcore", "langchain_openai", "langchain_anthropic"}
    return any(cls.__module__.split(".")[0] in roots for cls in type(exc).__mro__)


_OVERFLOW_HINTS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
)


# --------------------------------------------------------------------------------------
# the shared generator
# --------------------------------------------------------------------------------------


class LangChainGenerator(Generator):
    """A LangChain chat model with OpenOps' timeouts, retries and error messages."""

    provider = "langchain"  # spec prefix, e.g. "openai"
    label = "the provider"  # for messages, e.g. "OpenAI"
    key_env: str | None = None  # the provider's own environment variable for the key
    default_context_tokens = 8192
    _module = "langchain_openai"
    _package = "langchain-openai"
    _sdk = "openai"  # the provider SDK under the LangChain model

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float | None = None,
        max_retries: int = 2,
        backoff_base_s: float = 0.5,
        max_backoff_s: float = 20.0,
        context_tokens: int | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ):
        require_package(self._module, self._package, self.label)
        if not model:
            raise ProviderConfigError(
                f"no model given for {self.label}: set {MODEL_SETTING}={self.provider}:<model>"
            )
        self.model = model
        self.api_key = api_key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(
            connect_timeout_s if connect_timeout_s is not None else min(10.0, self.timeout_s)
        )
        self.max_retries = max(0, int(max_retries))
        self.backoff_base_s = backoff_base_s
        self.max_backoff_s = max_backoff_s
        self.context_tokens = int(context_tokens or self.default_context_tokens)
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.name = f"{self.provider}:{model}"
        self._chat: Any = None
        self._chat_loop: asyncio.AbstractEventLoop | None = None

    # ---- to implement per provider ---------------------------------------------------

    def _build_chat(self) -> Any:
        """The LangChain chat model, with SDK retries off and our timeouts."""
        raise NotImplementedError

    def prepare(self) -> None:
        # one throw-away model: its client belongs to no event loop yet, and questions build
        # their own in the server's loop (``_chat_model``)
        self._build_chat()

    endpoint_setting = BASE_URL_SETTING  # the setting that holds ``endpoint``

    @property
    def endpoint(self) -> str:
        """The URL named in 'cannot reach' messages."""
        return self.base_url or "(default endpoint)"

    def _model_hint(self) -> str:
        return f"set {MODEL_SETTING}={self.provider}:<model> to a model this server offers"

    # ---- shared machinery ------------------------------------------------------------

    def _timeout(self) -> Any:
        """A connect/read timeout object of the HTTP library the SDK uses (httpx2 or httpx)."""
        timeout_cls = getattr(_import(self._sdk, self._sdk), "Timeout", None)
        if timeout_cls is None:  # pragma: no cover - every SDK version so far exports it
            return self.timeout_s
        return timeout_cls(self.timeout_s, connect=self.connect_timeout_s)

    def _chat_model(self) -> Any:
        # An async HTTP client belongs to the event loop that first used it: build the
        # model once per loop (in the server that is exactly once).
        loop = asyncio.get_running_loop()
        if self._chat is None or self._chat_loop is not loop:
            self._chat = self._build_chat()
            self._chat_loop = loop
        return self._chat

    def _lc_messages(self, messages: list[ChatMessage]) -> list[Any]:
        lc = _import("langchain_core.messages", "langchain-core")
        kinds = {"system": lc.SystemMessage, "user": lc.HumanMessage, "assistant": lc.AIMessage}
        out = []
        for m in messages:
            if m.role not in kinds:
                raise ValueError(f"unknown chat role {m.role!r}")
            out.append(kinds[m.role](content=m.content))
        return out

    def _stream_kwargs(self) -> dict:
        return {}

    async def astream(self, messages: list[ChatMessage], gen: Generation) -> AsyncIterator[str]:
        chat = self._chat_model()  # the first call imports LangChain: not counted below
        lc_messages = self._lc_messages(messages)
        started = time.perf_counter()
        gen.model = gen.model or self.model
        attempt = 0
        while True:
            attempt += 1
            gen.extra["attempts"] = attempt
            yielded = False
            input_tokens = output_tokens = 0
            saw_usage = False
            stream = chat.astream(lc_messages, **self._stream_kwargs())
            try:
                async for chunk in stream:
                    usage = getattr(chunk, "usage_metadata", None)
                    if usage:
                        saw_usage = True
                        input_tokens += int(usage.get("input_tokens") or 0)
                        output_tokens += int(usage.get("output_tokens") or 0)
                    meta = getattr(chunk, "response_metadata", None) or {}
                    if meta.get("model_name"):
                        gen.model = str(meta["model_name"])
                    for key in ("finish_reason", "stop_reason"):
                        if meta.get(key):
                            gen.extra["finish_reason"] = meta[key]
                    text = _chunk_text(chunk)
                    if not text:
                        continue
                    if not yielded:
                        yielded = True
                        if gen.first_token_s is None:
                            gen.first_token_s = time.perf_counter() - started
                    gen.text += text
                    yield text
            except ProviderError:
                raise
            except Exception as exc:
                if not _is_provider_failure(exc):
                    raise  # a bug (ours or a library's), not the provider: keep the traceback
                failure = self._classify(exc, streamed=yielded)
                cause: BaseException = exc
            else:
                if saw_usage:
                    # 0 means "not reported" (an OpenAI-compatible server that ignores
                    # stream_options, an Anthropic proxy sending output_tokens only)
                    gen.input_tokens = input_tokens or None
                    gen.output_tokens = output_tokens or None
                return
            finally:
                # Release the HTTP connection now, also when our caller stops early
                # (aclose/cancel) or the stream failed, rather than at garbage collection.
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001, S110 - already failing or finished
                    pass
            if yielded or not failure.retryable or attempt > self.max_retries:
                log.warning(
                    "llm.failed provider=%s model=%s attempts=%d streamed=%s status=%s",
                    self.provider,
                    self.model,
                    attempt,
                    yielded,
                    failure.error.status,
                )
                raise failure.error from cause
            delay = self._backoff(attempt, failure.retry_after)
            if delay is None:
                raise failure.error from cause
            log.info(
                "llm.retry provider=%s model=%s attempt=%d delay_s=%.2f reason=%s",
                self.provider,
                self.model,
                attempt,
                delay,
                failure.error,
            )
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt; None: the server asked for too long."""
        if retry_after is not None:
            if retry_after > self.max_backoff_s:
                return None  # waiting less than asked is pointless; waiting longer, too slow
            return retry_after
        raw = self.backoff_base_s * (2 ** (attempt - 1))
        return min(self.max_backoff_s, raw) * random.uniform(0.5, 1.0)

    def _classify(self, exc: BaseException, *, streamed: bool) -> _Failure:
        label, detail = self.label, _detail(exc)
        status = _status(exc)
        if streamed:
            return _Failure(
                ProviderError(
                    f"{label} stopped streaming mid-answer ({detail}); the answer is incomplete, ask again",
                    status=502,
                    retryable=True,
                ),
                retryable=False,
            )
        if status is None and _is_timeout(exc) and not _is_connect_phase(exc):
            return _Failure(
                ProviderError(
                    f"{label} did not answer within {self.timeout_s:g} s "
                    f"(raise {TIMEOUT_SETTING} for slow models)",
                    status=504,
                    retryable=True,
                ),
                retryable=False,
            )
        if status is None and (_is_connection(exc) or _is_timeout(exc)):
            how = (
                f"no connection within {self.connect_timeout_s:g} s" if _is_timeout(exc) else _root_cause(exc)
            )
            return _Failure(
                ProviderError(
                    f"cannot reach {self.endpoint}: is the server running? ({how}) "
                    f"Check {self.endpoint_setting}.",
                    status=503,
                    retryable=True,
                ),
                retryable=True,
            )
        if status in (401, 403):
            key_vars = KEY_SETTING + (f" (or {self.key_env})" if self.key_env else "")
            return _Failure(
                ProviderError(
                    f"the {label} API key was rejected (HTTP {status}: {detail}): check {key_vars}",
                    status=502,
                ),
                retryable=False,
            )
        if status == 404:
            return _Failure(
                ProviderError(
                    f"{label} does not know the model {self.model!r} at {self.endpoint} "
                    f"({detail}): {self._model_hint()}",
                    status=502,
                ),
                retryable=False,
            )
        if status == 429:
            code = str(_error_body(exc).get("code") or _error_body(exc).get("type") or "")
            if code == "insufficient_quota":
                return _Failure(
                    ProviderError(
                        f"the {label} account has no quota left ({detail}): check its billing",
                        status=502,
                    ),
                    retryable=False,
                )
            after = _retry_after(exc)
            wait = f" (the server asked to wait {after:g} s)" if after else ""
            return _Failure(
                ProviderError(
                    f"{label} rate limited OpenOps, try again later{wait}",
                    status=503,
                    retryable=True,
                ),
                retryable=True,
                retry_after=after,
            )
        if status is not None and (status >= 500 or status in RETRY_STATUSES):
            overloaded = status in (503, 529)
            return _Failure(
                ProviderError(
                    f"{label} failed with HTTP {status} ({detail}); try again later",
                    status=503 if overloaded else 502,
                    retryable=True,
                ),
                retryable=True,
                retry_after=_retry_after(exc),
            )
        if status is not None and 400 <= status < 500:
            if any(h in detail.lower() for h in _OVERFLOW_HINTS):
                msg = (
                    f"the prompt does not fit the context window of {self.model!r} ({detail}): "
                    f"set {CONTEXT_SETTING} to the model's real context size"
                )
            else:
                msg = f"{label} rejected the request (HTTP {status}: {detail})"
            return _Failure(ProviderError(msg, status=502), retryable=False)
        return _Failure(
            ProviderError(f"{label} failed: {type(exc).__name__}: {detail}", status=502),
            retryable=False,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (optional; the process exit does it too)."""
        chat, self._chat = self._chat, None
        for attr in ("root_async_client", "_async_client"):
            client = getattr(chat, attr, None) if chat is not None else None
            close = getattr(client, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001, S110
                    pass


def _chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", "")
    if isinstance(content, str):
        return content
    text = getattr(chunk, "text", "")  # content blocks (a property in langchain-core 1.x)
    return text() if callable(text) else str(text or "")


# --------------------------------------------------------------------------------------
# providers
# --------------------------------------------------------------------------------------


class OpenAIGenerator(LangChainGenerator):
    """OpenAI's Chat Completions API (``openai:<model>``)."""

    provider = "openai"
    label = "OpenAI"
    key_env: str | None = "OPENAI_API_KEY"
    default_context_tokens = 128_000
    stream_usage = True

    @property
    def endpoint(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    def _chat_kwargs(self) -> dict:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "api_key": self.api_key,
            "timeout": self._timeout(),
            "max_retries": 0,  # we retry, only before the first token
            "stream_usage": self.stream_usage,
            "stream_chunk_timeout": self.timeout_s,
            "use_responses_api": False,  # Chat Completions: what every compatible server speaks
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.max_output_tokens:
            kwargs["max_tokens"] = self.max_output_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return kwargs

    def _build_chat(self) -> Any:
        return _import("langchain_openai", "langchain-openai").ChatOpenAI(**self._chat_kwargs())

    def _model_hint(self) -> str:
        return f"set {MODEL_SETTING}=openai:<model> to a model your key can use, e.g. openai:gpt-4o-mini"


class OpenAICompatibleGenerator(OpenAIGenerator):
    """A server speaking OpenAI's Chat Completions API: LocalAI, Ollama, vLLM, llama.cpp.

    ``base_url`` is the API root including ``/v1`` (Ollama: http://localhost:11434/v1,
    vLLM: http://localhost:8000/v1). The key is optional: most local servers ignore it,
    but the SDK insists on one, so a placeholder is sent. Usage is requested with
    ``stream_options``; pass ``stream_usage=False`` for a server that rejects the field.
    """

    provider = "openai_compatible"
    label = "OpenAI-compatible server"
    key_env = None
    default_context_tokens = 8192

    def __init__(self, model: str, *, base_url: str | None = None, stream_usage: bool = True, **kw: Any):
        if not base_url:
            raise ProviderConfigError(
                f"openai_compatible needs the server's URL: set {BASE_URL_SETTING}, e.g. "
                "http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)"
            )
        kw["api_key"] = kw.get("api_key") or "not-needed"
        super().__init__(model, base_url=base_url, **kw)
        self.stream_usage = stream_usage

    @property
    def endpoint(self) -> str:
        return self.base_url or ""

    def _model_hint(self) -> str:
        return (
            f"set {MODEL_SETTING}=openai_compatible:<model> to a model the server has loaded "
            f"(GET {self.endpoint}/models lists them)"
        )


class AzureOpenAIGenerator(OpenAIGenerator):
    """Azure OpenAI (``azure_openai:<deployment>``): the deployment name, not the model."""

    provider = "azure_openai"
    label = "Azure OpenAI"
    key_env = "AZURE_OPENAI_API_KEY"
    default_context_tokens = 128_000
    default_api_version = "2024-10-21"

    def __init__(
        self,
        deployment: str,
        *,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        **kw: Any,
    ):
        endpoint = azure_endpoint or kw.pop("base_url", None) or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ProviderConfigError(
                "azure_openai needs the resource endpoint: set OPENOPS_AZURE_OPENAI_ENDPOINT "
                "(or AZURE_OPENAI_ENDPOINT), e.g. https://my-resource.openai.azure.com"
            )
        kw.pop("base_url", None)
        super().__init__(deployment, **kw)
        self.deployment = deployment
        self.azure_endpoint = endpoint.rstrip("/")
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or self.default_api_version

    endpoint_setting = "OPENOPS_AZURE_OPENAI_ENDPOINT"

    @property
    def endpoint(self) -> str:
        return self.azure_endpoint

    def _build_chat(self) -> Any:
        kwargs = self._chat_kwargs()
        kwargs.pop("model")
        kwargs.pop("base_url", None)
        kwargs.update(
            azure_deployment=self.deployment,
            azure_endpoint=self.azure_endpoint,
            api_version=self.api_version,
        )
        return _import("langchain_openai", "langchain-openai").AzureChatOpenAI(**kwargs)

    def _model_hint(self) -> str:
        return (
            f"set {MODEL_SETTING}=azure_openai:<deployment> to a deployment of the resource at "
            f"OPENOPS_AZURE_OPENAI_ENDPOINT (api-version {self.api_version})"
        )

    def _classify(self, exc: BaseException, *, streamed: bool) -> _Failure:
        failure = super()._classify(exc, streamed=streamed)
        if _status(exc) == 404 and not streamed:
            failure.error = ProviderError(
                f"Azure OpenAI has no deployment {self.deployment!r} at {self.azure_endpoint} "
                f"with api-version {self.api_version} ({_detail(exc)}): {self._model_hint()}",
                status=502,
            )
        return failure


_ANTHROPIC_CHAT_CLS: Any = None


def _anthropic_chat_class() -> Any:
    """ChatAnthropic with an SDK client we configure (connect/read timeouts, no retries).

    ChatAnthropic only takes one float timeout and caches its HTTP client per base URL
    across instances (and so across event loops); this subclass builds its own.
    """
    global _ANTHROPIC_CHAT_CLS
    if _ANTHROPIC_CHAT_CLS is None:
        from functools import cached_property

        anthropic = _import("anthropic", "anthropic")
        ChatAnthropic = _import("langchain_anthropic", "langchain-anthropic").ChatAnthropic
        if not isinstance(ChatAnthropic.__dict__.get("_async_client"), cached_property) or not hasattr(
            ChatAnthropic, "_client_params"
        ):
            # A langchain-anthropic whose internals moved: use it as is (one float timeout
            # for connect and read, its own cached client; still no SDK retries).
            log.warning("llm.anthropic_client_override_unavailable; using ChatAnthropic's own client")
            _ANTHROPIC_CHAT_CLS = ChatAnthropic
            return ChatAnthropic

        class _OpenOpsChatAnthropic(ChatAnthropic):  # type: ignore[misc, valid-type]
            openops_timeout: Any = None

            @cached_property
            def _async_client(self) -> Any:
                params = dict(self._client_params)
                params["max_retries"] = 0
                if self.openops_timeout is not None:
                    params["timeout"] = self.openops_timeout
                return anthropic.AsyncAnthropic(**params)

        _ANTHROPIC_CHAT_CLS = _OpenOpsChatAnthropic
    return _ANTHROPIC_CHAT_CLS


class AnthropicGenerator(LangChainGenerator):
    """Anthropic's Messages API (``anthropic:<model>``)."""

    provider = "anthropic"
    label = "Anthropic"
    key_env = "ANTHROPIC_API_KEY"
    default_context_tokens = 200_000
    default_max_output_tokens = 1024
    _module = "langchain_anthropic"
    _package = "langchain-anthropic"
    _sdk = "anthropic"

    @property
    def endpoint(self) -> str:
        return self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"

    def _lc_messages(self, messages: list[ChatMessage]) -> list[Any]:
        # The Messages API has one top-level system prompt: merge ours into it.
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        rest = [m for m in messages if m.role != "system"]
        merged = ([ChatMessage("system", system)] if system else []) + rest
        return super()._lc_messages(merged)

    def _build_chat(self) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "api_key": self.api_key,
            "max_retries": 0,
            "timeout": self.timeout_s,
            "max_tokens": self.max_output_tokens or self.default_max_output_tokens,
            "stream_usage": True,
        }
        chat_cls = _anthropic_chat_class()
        if "openops_timeout" in getattr(chat_cls, "model_fields", {}):
            kwargs["openops_timeout"] = self._timeout()  # separate connect and read timeouts
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return chat_cls(**kwargs)

    def _model_hint(self) -> str:
        return f"set {MODEL_SETTING}=anthropic:<model>, e.g. anthropic:claude-3-5-haiku-latest"
