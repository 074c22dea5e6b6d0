"""Local LLM protocol servers: OpenAI Chat Completions (also Azure's path) and Anthropic Messages.

FastAPI apps served by uvicorn in a background thread on a free 127.0.0.1 port. Use them as
context managers or through the pytest fixtures at the bottom::

    with OpenAIServer(reply="Hello there.", api_key="sk-test") as srv:
        ChatOpenAI(base_url=srv.base_url, api_key="sk-test", ...)
        srv.fail_next(1, status=429, retry_after=1)   # script the next requests
        ...
        assert srv.requests[-1].body["messages"][0]["role"] == "system"

Wire formats follow the providers' API references:

* OpenAI ``POST /v1/chat/completions``: a ``chat.completion`` object, or with
  ``stream: true`` server-sent events ``data: {chat.completion.chunk}`` (the first delta
  carries the role, then ``choices[0].delta.content`` pieces, then a chunk with
  ``finish_reason``; with ``stream_options.include_usage`` every chunk has ``"usage": null``
  and a last chunk with empty ``choices`` carries ``usage``), ended by ``data: [DONE]``.
  Errors: ``{"error": {"message", "type", "param", "code"}}``; an error inside a stream is a
  ``data: {"error": {...}}`` event. Auth: ``Authorization: Bearer <key>``.
* Azure OpenAI ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
  with an ``api-key`` header; Azure's error bodies ``{"error": {"code", "message"}}`` and a
  first stream chunk with empty ``choices`` and ``prompt_filter_results``.
* Anthropic ``POST /v1/messages`` (headers ``x-api-key`` - or ``Authorization: Bearer``,
  which anthropic>=2 sends - and ``anthropic-version``): a
  ``message`` object, or the event stream ``message_start``, ``content_block_start``,
  ``ping``, ``content_block_delta`` (``text_delta``) ..., ``content_block_stop``,
  ``message_delta`` (``stop_reason``, cumulative ``usage``), ``message_stop``. Errors:
  ``{"type": "error", "error": {"type", "message"}, "request_id"}``; inside a stream an
  ``event: error``.

Token counts are word counts (a stand-in for a tokenizer): the input count is the number of
whitespace-separated words in the system prompt and messages, the output count the number
of streamed pieces (one word with its leading whitespace each).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Reply = str | Callable[[dict], str]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON (or the raw text when it is not JSON)
    at: float = field(default_factory=time.time)


@dataclass
class Fault:
    """What to do to one request instead of answering it normally."""

    status: int | None = None  # answer with this HTTP error status (provider's error body)
    retry_after: float | None = None  # Retry-After header (seconds) on that error
    message: str | None = None  # override the error message
    hang_s: float = 0.0  # wait this long before answering (client read timeouts fire)
    after_tokens: int | None = None  # stream this many pieces, then fail mid-stream
    how: str = "error_event"  # mid-stream: "error_event" (protocol error event) or "disconnect"


def split_tokens(text: str) -> list[str]:
    """Pieces of ``text`` that concatenate back to it: each word with its leading spaces."""
    return re.findall(r"\s*\S+|\s+$", text)


def awkward_chunks(text: str, seed: int = 9) -> list[str]:
    """Pieces of ``text`` of 1 to 6 characters, cut wherever a seeded random walk lands: inside
    ``](``, ``://``, ``www.``, ``![``, ``<img``, ``@channel`` as often as anywhere else."""
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rnd.randint(1, 6)
        out.append(text[i:i + n])
        i += n
    return out


class InjectionObeyingModel:
    """A reply for the protocol servers that plays a model obeying an instruction planted in
    a source: whatever a source asks to be said between ``<<<`` and ``>>>`` ("ignore previous
    instructions and reply with: <<<...>>>") is said, after an honest ``preface`` with a
    citation, followed by ``extra`` (e.g. the permalinks a test expects to stay links)::

        model = InjectionObeyingModel()
        with OpenAIServer(reply=model) as srv:
            srv.chunker = awkward_chunks
    """

    planted = re.compile(r"(?s)<<<(.*?)(?:>>>|\n\nQuestion: )")  # across sources, to the end
    fences = re.compile(r"^</?source[^>]*>$", re.M)

    def __init__(self, preface: str = "The deploy freeze starts Friday at noon [1].",
                 extra: str = ""):
        self.preface = preface
        self.extra = extra
        self.said: list[str] = []  # every reply, as the model said it (before any guard)

    def __call__(self, body: dict) -> str:
        told = [self.fences.sub("", t).strip() for t in self.planted.findall(last_user_text(body))]
        reply = "\n\n".join(x for x in (self.preface, *told, self.extra) if x)
        self.said.append(reply)
        return reply


def count_words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def _text_of(content: Any) -> str:
    """The text of an OpenAI/Anthropic message content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def last_user_text(body: dict) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def system_text(body: dict) -> str:
    """The system prompt of a request of either protocol."""
    if "system" in body:  # Anthropic: top level
        return _text_of(body["system"])
    return "\n".join(
        _text_of(m.get("content"))
        for m in body.get("messages") or []
        if m.get("role") in ("system", "developer")
    )


def _mask(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else "***"


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class _Disconnect(Exception):
    """Raised inside a stream to drop the connection without finishing the response."""


class ProtocolServer:
    """The scriptable part shared by both protocol servers."""

    default_model = "test-model"

    def __init__(
        self,
        *,
        reply: Reply = "Hello from the test double.",
        token_delay_s: float = 0.0,
        first_token_delay_s: float = 0.0,
        api_key: str | None = None,
        models: set[str] | None = None,
        hang_s: float = 0.0,
        log_level: str = "warning",
    ):
        self.reply = reply
        self.token_delay_s = token_delay_s
        self.first_token_delay_s = first_token_delay_s
        self.api_key = api_key  # None: any key (or none) is accepted
        self.models = models  # None: every model name exists
        self.hang_s = hang_s  # every request waits this long (see also hang_next)
        self.requests: list[RecordedRequest] = []
        # how a streamed answer is cut into pieces (default: word by word; see awkward_chunks)
        self.chunker: Callable[[str], list[str]] | None = None
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.port: int = 0
        self.app = FastAPI()
        self._routes(self.app)

    # ---- scripting --------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 429, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Answer the next ``n`` requests with ``status`` and the provider's error body."""
        self.script(*[Fault(status=status, retry_after=retry_after, message=message) for _ in range(n)])

    def hang_next(self, seconds: float, n: int = 1) -> None:
        """Make the next ``n`` requests wait ``seconds`` before any byte of the answer."""
        self.script(*[Fault(hang_s=seconds) for _ in range(n)])

    def break_stream_next(
        self, after_tokens: int = 1, *, status: int = 500, how: str = "error_event", n: int = 1
    ) -> None:
        """Stream ``after_tokens`` pieces of the next ``n`` answers, then fail (an error
        event of ``status``'s kind, or a dropped connection with ``how="disconnect"``)."""
        self.script(*[Fault(status=status, after_tokens=after_tokens, how=how) for _ in range(n)])

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def reply_for(self, body: dict) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    # ---- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProtocolServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"llm-double-{self.port}"
        )
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        self._sock = sock
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- helpers for the routes -------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(rec)
        return rec

    async def _hang(self, request: Request, seconds: float) -> bool:
        """Wait; True when the client went away meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping:
            if await request.is_disconnected():
                return True
            await asyncio.sleep(0.02)
        return False

    async def _pieces(self, text: str, limit: int | None) -> AsyncIterator[str]:
        tokens = (self.chunker or split_tokens)(text)
        if limit is not None:
            tokens = tokens[:limit]
        for i, tok in enumerate(tokens):
            delay = self.first_token_delay_s if i == 0 else self.token_delay_s
            if delay:
                await asyncio.sleep(delay)
            yield tok

    def _routes(self, app: FastAPI) -> None:  # pragma: no cover - per protocol
        raise NotImplementedError


def _streaming(gen: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(
        gen,
        media_type="text/event-stream; charset=utf-8",
        headers={"cache-control": "no-cache", **headers},
    )


# ======================================================================================
# OpenAI Chat Completions (and Azure OpenAI)
# ======================================================================================


class OpenAIServer(ProtocolServer):
    """OpenAI's Chat Completions API; Azure's deployment path on the same port.

    ``base_url`` is what ``openai``/``ChatOpenAI`` take (ending in ``/v1``);
    ``azure_endpoint`` is what ``AzureOpenAI``/``AzureChatOpenAI`` take.
    ``deployments`` limits the Azure deployments that exist (None: any name).
    """

    default_model = "gpt-4o-mini-2024-07-18"

    def __init__(
        self, *, deployments: set[str] | None = None, azure_model: str = "gpt-4o-2024-08-06", **kw: Any
    ):
        self.deployments = deployments
        self.azure_model = azure_model
        super().__init__(**kw)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        return self.url

    # ---- errors -----------------------------------------------------------------------

    @staticmethod
    def _openai_error(
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict | None = None,
    ) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": message, "type": type_, "param": param, "code": code}},
            status_code=status,
            headers={"x-request-id": "req_" + uuid.uuid4().hex, **(headers or {})},
        )

    @staticmethod
    def _azure_error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=status,
            headers={"apim-request-id": str(uuid.uuid4()), **(headers or {})},
        )

    def _fault_response(self, fault: Fault, *, model: str, azure: bool, api_version: str) -> JSONResponse:
        status = fault.status or 500
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        if status == 429:
            headers.update(
                {
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{fault.retry_after or 20:g}s",
                }
            )
            if azure:
                return self._azure_error(
                    429,
                    "429",
                    fault.message
                    or (
                        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                        f"{api_version} have exceeded call rate limit of your current OpenAI S0 "
                        f"pricing tier. Please retry after {fault.retry_after or 1:g} second. "
                        "Please go here: https://aka.ms/oai/quotaincrease if you would like to "
                        "further increase the default rate limit."
                    ),
                    headers,
                )
            return self._openai_error(
                429,
                fault.message
                or (
                    f"Rate limit reached for {model} in organization org-openops-test on requests per min "
                    f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {fault.retry_after or 20:g}s. "
                    "Visit https://platform.openai.com/account/rate-limits to learn more."
                ),
                "requests",
                "rate_limit_exceeded",
                headers=headers,
            )
        if status == 503:
            return self._openai_error(
                503,
                fault.message or "The engine is currently overloaded, please try again later",
                "server_error",
                headers=headers,
            )
        if status >= 500:
            return self._openai_error(
                status,
                fault.message or "The server had an error while processing your request. Sorry about that!",
                "server_error",
                headers=headers,
            )
        return self._openai_error(
            status, fault.message or f"Scripted error {status}", "invalid_request_error", headers=headers
        )

    def _stream_error_event(self, status: int) -> bytes:
        if status == 429:
            err = {
                "message": "Rate limit reached",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        else:
            err = {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        return _sse({"error": err})

    def _auth(self, rec: RecordedRequest, azure: bool) -> JSONResponse | None:
        if self.api_key is None:
            return None
        if azure:
            given = rec.headers.get("api-key")
            if given != self.api_key:
                return self._azure_error(
                    401,
                    "401",
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                    "provide a valid key for an active subscription and use a correct regional API "
                    "endpoint for your resource.",
                )
            return None
        auth = rec.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return self._openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
                "key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        given = auth[7:].strip()
        if given != self.api_key:
            return self._openai_error(
                401,
                f"Incorrect API key provided: {_mask(given)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return None

    # ---- routes -----------------------------------------------------------------------

    def _routes(self, app: FastAPI) -> None:
        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            return await self._chat(request, deployment=None)

        @app.post("/openai/deployments/{deployment}/chat/completions")
        async def azure_chat(deployment: str, request: Request) -> Response:
            return await self._chat(request, deployment=deployment)

        @app.get("/v1/models")
        async def models() -> Response:
            names = sorted(self.models or {self.default_model})
            return JSONResponse(
                {
                    "object": "list",
                    "data": [
                        {"id": n, "object": "model", "created": 1700000000, "owned_by": "openops-test"}
                        for n in names
                    ],
                }
            )

    async def _chat(self, request: Request, deployment: str | None) -> Response:
        rec = await self._record(request)
        azure = deployment is not None
        api_version = rec.query.get("api-version", "")
        if azure and not api_version:
            return self._azure_error(404, "404", "Resource not found")
        denied = self._auth(rec, azure)
        if denied is not None:
            return denied
        body = rec.body if isinstance(rec.body, dict) else None
        if body is None:
            return self._openai_error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what "
                "was sent was not valid JSON.)",
                "invalid_request_error",
            )
        if not body.get("messages"):
            return self._openai_error(
                400,
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                "missing_required_parameter",
                "messages",
            )
        if azure:
            if self.deployments is not None and deployment not in self.deployments:
                return self._azure_error(
                    404,
                    "DeploymentNotFound",
                    "The API deployment for this resource does not exist. If you created the deployment "
                    "within the last 5 minutes, please wait a moment and try again.",
                )
            model = self.azure_model
        else:
            if not body.get("model"):
                return self._openai_error(
                    400, "you must provide a model parameter", "invalid_request_error", None, None
                )
            model = str(body["model"])
            if self.models is not None and model not in self.models:
                return self._openai_error(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                )

        fault = self._next_fault()
        hang = self.hang_s + (fault.hang_s if fault else 0.0)
        if hang and await self._hang(request, hang):
            return Response(status_code=499)
        if fault and fault.status and fault.after_tokens is None:
            return self._fault_response(fault, model=model, azure=azure, api_version=api_version)

        text = self.reply_for(body)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt_tokens = sum(count_words(_text_of(m.get("content"))) for m in body["messages"])
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        headers = {"x-request-id": "req_" + uuid.uuid4().hex, "openai-processing-ms": "1"}

        if not body.get("stream"):
            pieces = split_tokens(text)
            finish = "stop"
            if limit and len(pieces) > int(limit):
                pieces, finish = pieces[: int(limit)], "length"
            content = "".join(pieces)
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_openops",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": content,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": self._usage(prompt_tokens, len(pieces)),
                    "service_tier": "default",
                },
                headers=headers,
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list, usage: Any = ..., **extra: Any) -> bytes:
            data: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_openops",
                "choices": choices,
            }
            data.update(extra)
            if include_usage:
                data["usage"] = None if usage is ... else usage
            return _sse(data)

        def choice(delta: dict, finish: str | None = None) -> list:
            c: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            if azure:
                c["content_filter_results"] = (
                    {}
                    if finish
                    else {
                        k: {"filtered": False, "severity": "safe"}
                        for k in ("hate", "self_harm", "sexual", "violence")
                    }
                )
            return [c]

        async def events() -> AsyncIterator[bytes]:
            if azure:  # Azure first sends the prompt's content-filter verdict
                yield _sse(
                    {
                        "choices": [],
                        "created": 0,
                        "id": "",
                        "model": "",
                        "object": "",
                        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                    }
                )
            yield chunk(choice({"role": "assistant", "content": "", "refusal": None}))
            n = 0
            break_after = fault.after_tokens if fault else None
            async for piece in self._pieces(text, int(limit) if limit else None):
                if break_after is not None and n >= break_after:
                    break
                yield chunk(choice({"content": piece}))
                n += 1
            if break_after is not None and fault is not None:
                if fault.how == "disconnect":
                    raise _Disconnect("scripted disconnect")
                yield self._stream_error_event(fault.status or 500)
                return
            finish = "length" if limit and len(split_tokens(text)) > int(limit) else "stop"
            yield chunk(choice({}, finish))
            if include_usage:
                yield chunk([], usage=self._usage(prompt_tokens, n))
            yield b"data: [DONE]\n\n"

        return _streaming(events(), headers)

    @staticmethod
    def _usage(prompt: int, completion: int) -> dict:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


# ======================================================================================
# Anthropic Messages
# ======================================================================================


class AnthropicServer(ProtocolServer):
    """Anthropic's Messages API. ``base_url`` is what ``anthropic``/``ChatAnthropic`` take."""

    default_model = "claude-test"

    @property
    def base_url(self) -> str:
        return self.url

    @staticmethod
    def _error(status: int, type_: str, message: str, headers: dict | None = None) -> JSONResponse:
        rid = "req_" + uuid.uuid4().hex[:24]
        return JSONResponse(
            {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid},
            status_code=status,
            headers={"request-id": rid, **(headers or {})},
        )

    _ERROR_TYPES = {
        400: ("invalid_request_error", "Invalid request"),
        401: ("authentication_error", "invalid x-api-key"),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "Not found"),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: (
            "rate_limit_error",
            "Number of requests has exceeded your per-minute rate limit "
            "(https://docs.claude.com/en/api/rate-limits); see the response headers "
            "for current usage. Please reduce the number of requests or try again later.",
        ),
        500: ("api_error", "Internal server error"),
        529: ("overloaded_error", "Overloaded"),
    }

    def _error_kind(self, status: int) -> tuple[str, str]:
        if status in self._ERROR_TYPES:
            return self._ERROR_TYPES[status]
        return (
            ("api_error", "Internal server error")
            if status >= 500
            else ("invalid_request_error", "Invalid request")
        )

    def _routes(self, app: FastAPI) -> None:
        @app.post("/v1/messages")
        async def messages(request: Request) -> Response:
            return await self._messages(request)

    async def _messages(self, request: Request) -> Response:
        rec = await self._record(request)
        if not rec.headers.get("anthropic-version"):
            return self._error(400, "invalid_request_error", "anthropic-version: header is required")
        if self.api_key is not None:
            # An API key comes as ``x-api-key``; SDKs of 2026 send it as a bearer token
            # (``Authorization: Bearer``), which the API accepts too.
            auth = rec.headers.get("authorization", "")
            given = rec.headers.get("x-api-key") or (
                auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            )
            if not given:
                return self._error(401, "authentication_error", "x-api-key header is required")
            if given != self.api_key:
                return self._error(401, "authentication_error", "invalid x-api-key")
        body = rec.body if isinstance(rec.body, dict) else None
        if body is None:
            return self._error(
                400, "invalid_request_error", "There was an issue with your request body: invalid JSON"
            )
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return self._error(400, "invalid_request_error", f"{name}: Field required")
        if not body["messages"]:
            return self._error(400, "invalid_request_error", "messages: at least one message is required")
        if body["messages"][0].get("role") != "user":
            return self._error(
                400, "invalid_request_error", 'messages: first message must use the "user" role'
            )
        model = str(body["model"])
        if self.models is not None and model not in self.models:
            return self._error(404, "not_found_error", f"model: {model}")

        fault = self._next_fault()
        hang = self.hang_s + (fault.hang_s if fault else 0.0)
        if hang and await self._hang(request, hang):
            return Response(status_code=499)
        if fault and fault.status and fault.after_tokens is None:
            type_, message = self._error_kind(fault.status)
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            if fault.status == 429:
                headers["anthropic-ratelimit-requests-remaining"] = "0"
            return self._error(fault.status, type_, fault.message or message, headers)

        text = self.reply_for(body)
        limit = int(body["max_tokens"])
        input_tokens = count_words(system_text(body)) + sum(
            count_words(_text_of(m.get("content"))) for m in body["messages"]
        )
        mid = "msg_" + uuid.uuid4().hex[:24]
        rid = "req_" + uuid.uuid4().hex[:24]
        all_pieces = split_tokens(text)
        stop_reason = "max_tokens" if len(all_pieces) > limit else "end_turn"

        if not body.get("stream"):
            pieces = all_pieces[:limit]
            return JSONResponse(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": "".join(pieces)}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": len(pieces),
                        "service_tier": "standard",
                    },
                },
                headers={"request-id": rid},
            )

        async def events() -> AsyncIterator[bytes]:
            yield _sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": mid,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": input_tokens,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                            "output_tokens": 1,
                            "service_tier": "standard",
                        },
                    },
                },
                "message_start",
            )
            yield _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            yield _sse({"type": "ping"}, "ping")
            n = 0
            break_after = fault.after_tokens if fault else None
            async for piece in self._pieces(text, limit):
                if break_after is not None and n >= break_after:
                    break
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                    "content_block_delta",
                )
                n += 1
            if break_after is not None and fault is not None:
                if fault.how == "disconnect":
                    raise _Disconnect("scripted disconnect")
                type_, message = self._error_kind(fault.status or 500)
                yield _sse({"type": "error", "error": {"type": type_, "message": message}}, "error")
                return
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": n,
                    },
                },
                "message_delta",
            )
            yield _sse({"type": "message_stop"}, "message_stop")

        return _streaming(events(), {"request-id": rid})


# ======================================================================================
# pytest fixtures (import them into a test module or a conftest)
# ======================================================================================

try:
    import pytest
except ImportError:  # pragma: no cover - the bench imports this module without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def openai_server():
        with OpenAIServer() as srv:
            yield srv

    @pytest.fixture
    def anthropic_server():
        with AnthropicServer() as srv:
            yield srv
